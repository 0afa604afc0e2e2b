"""Benchmark: e-mail ingestion through the inbox URL and the IMAP poller.

The figure is a ratio against Tryton's inbound_email alone storing the same
messages (an inbox whose rule has no action), measured in the same run on
PostgreSQL, so a noisy machine affects both sides alike.
Ingestion is storing the message and its processing task (request,
attachments); the follow-up task of each new request (follower and
acknowledgement sent over SMTP) is timed apart and given too, as the total.
Tasks run as trytond-worker runs them (run_task), one after the other.

Usage: python bench/inbound_email.py [--messages N] [--uri postgresql://...]
"""
import argparse
import cProfile
import sys
import time
from email.message import EmailMessage

from common import activate, machine, summary, use_postgresql, write_section


def messages(count, senders, prefix):
    for i in range(count):
        message = EmailMessage()
        message['From'] = senders[i % len(senders)]
        message['To'] = 'update@webservice.mq'
        message['Subject'] = "Mise à jour de la page %s" % i
        message['Message-ID'] = '<%s-%s@bench.example>' % (prefix, i)
        message.set_content("Bonjour,\nmerci de changer le texte %s.\n" % i)
        yield message.as_bytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--messages', type=int, default=200)
    parser.add_argument(
        '--uri', default='postgresql://postgres@127.0.0.1:5432/')
    parser.add_argument(
        '--database', default='bench_forfait',
        help="name of the database the run creates and drops")
    parser.add_argument(
        '--profile', help="write the forfait inbox run's cProfile stats here")
    args = parser.parse_args()
    use_postgresql(args.uri, args.database)

    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    import trytond.config as config
    from trytond.modules.company.tests import create_company, set_company
    from trytond.pool import Pool
    from trytond.tests.test_tryton import drop_db
    from trytond.transaction import Transaction
    from trytond.worker import run_task
    from trytond.wsgi import app
    from webservice_forfait.tests.imap_server import Dovecot
    from webservice_forfait.tests.smtp_server import SMTPServer

    def run_pending(method):
        "Run the queued tasks of inbound.email's method, oldest first"
        with Transaction().start(db_name, 0):
            Queue = Pool().get('ir.queue')
            tasks = [q.id for q in Queue.search(
                    [('finished_at', '=', None)], order=[('id', 'ASC')])
                if q.data.get('method') == method]
        for task_id in tasks:
            run_task(db_name, task_id)
        return len(tasks)

    senders = ['client%s@example.mq' % i for i in range(50)]
    smtp = SMTPServer().start()
    config.set('email', 'uri', smtp.uri)
    config.set('email', 'from', 'update@webservice.mq')
    db_name = activate()
    # tasks wait in the queue, as with trytond-worker, and are run below
    if not config.has_section('queue'):
        config.add_section('queue')
    config.set('queue', 'worker', 'True')
    with Transaction().start(db_name, 0) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Inbox = pool.get('inbound.email.inbox')
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            Party.save([Party(name="Client %s" % i, contact_mechanisms=[
                            {'type': 'email', 'value': e}])
                    for i, e in enumerate(senders)])
            forfait = Config(1).inbound_inbox
            forfait.identifier = 'forfait'
            baseline = Inbox(name="Baseline", identifier='baseline',
                rules=[{}])
            Inbox.save([forfait, baseline])
        transaction.commit()

    client = Client(app, Response)
    results = {}
    for name in ['baseline', 'forfait']:
        profile = cProfile.Profile() if (
            args.profile and name == 'forfait') else None
        start = time.perf_counter()
        if profile:
            profile.enable()
        for data in messages(args.messages, senders, name):
            response = client.post(
                '/%s/inbound_email/inbox/%s' % (db_name, name), data=data)
            assert response.status_code == 204, response.status_code
        run_pending('forfait_process')
        results['inbox', name] = time.perf_counter() - start
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        start = time.perf_counter()
        run_pending('forfait_follow_up')
        results['inbox', name, 'follow-up'] = time.perf_counter() - start

    with Dovecot() as dovecot:
        for name in ['baseline', 'forfait']:
            for data in messages(args.messages, senders, 'imap-' + name):
                dovecot.append(data)
            start = time.perf_counter()
            with Transaction().start(db_name, 0) as transaction:
                pool = Pool()
                Config = pool.get('forfait.configuration')
                Inbox = pool.get('inbound.email.inbox')
                Email = pool.get('inbound.email')
                config_ = Config(1)
                config_.imap_host = dovecot.host
                config_.imap_port = dovecot.port
                config_.imap_security = 'none'
                config_.imap_user = dovecot.user
                config_.imap_password = dovecot.password
                config_.inbound_inbox, = Inbox.search(
                    [('identifier', '=', name)])
                config_.save()
                Email.forfait_fetch_mailboxes()
                transaction.commit()
            run_pending('forfait_process')
            results['poller', name] = time.perf_counter() - start
            start = time.perf_counter()
            run_pending('forfait_follow_up')
            results['poller', name, 'follow-up'] = (
                time.perf_counter() - start)

    with Transaction().start(db_name, 0):
        Request = Pool().get('forfait.request')
        created = Request.search_count([])
    assert created == 2 * args.messages, created
    assert len(smtp.messages) == 2 * args.messages, len(smtp.messages)
    smtp.stop()
    drop_db()

    rows, figures = [], []
    for channel in ['inbox', 'poller']:
        base = args.messages / results[channel, 'baseline']
        ours = args.messages / results[channel, 'forfait']
        total = args.messages / (
            results[channel, 'forfait']
            + results[channel, 'forfait', 'follow-up'])
        rows.append('| %s | %d | %.1f | %.1f | %.2f | %.1f | %.2f |' % (
                channel, args.messages, base, ours, base / ours, total,
                base / total))
        figures.append((
                "%s messages through the %s" % (args.messages, channel),
                "%.1f msg/s" % ours, "%.1f msg/s stored alone" % base,
                "%.2f" % (base / ours)))
    table = '\n'.join([
            machine(),
            "",
            "| channel | messages | inbound_email alone (msg/s) "
            "| forfait ingestion (msg/s) | ratio "
            "| with follow-up (msg/s) | ratio |",
            "|---|---|---|---|---|---|---|",
            *rows])
    print(table)
    write_section('inbound_email', table)
    summary('inbound_email', figures)


if __name__ == '__main__':
    sys.exit(main())
