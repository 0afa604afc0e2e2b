"""Benchmark: e-mail ingestion through the inbox URL and the IMAP poller.

The figure is a ratio against Tryton's inbound_email alone storing the same
messages (an inbox whose rule has no action), measured in the same run on
PostgreSQL, so a noisy machine affects both sides alike.

Usage: python bench/inbound_email.py [--messages N] [--uri postgresql://...]
"""
import argparse
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
    args = parser.parse_args()
    use_postgresql(args.uri)

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

    senders = ['client%s@example.mq' % i for i in range(50)]
    smtp = SMTPServer().start()
    config.set('email', 'uri', smtp.uri)
    config.set('email', 'from', 'update@webservice.mq')
    db_name = activate()
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
        start = time.perf_counter()
        for data in messages(args.messages, senders, name):
            response = client.post(
                '/%s/inbound_email/inbox/%s' % (db_name, name), data=data)
            assert response.status_code == 204, response.status_code
        results['inbox', name] = time.perf_counter() - start

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
                tasks = list(transaction.tasks)
                transaction.tasks.clear()
            for task_id in tasks:
                run_task(db_name, task_id)
            results['poller', name] = time.perf_counter() - start

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
        rows.append('| %s | %d | %.1f | %.1f | %.2f |' % (
                channel, args.messages, base, ours, base / ours))
        figures.append((
                "%s messages through the %s" % (args.messages, channel),
                "%.1f msg/s" % ours, "%.1f msg/s stored alone" % base,
                "%.2f" % (base / ours)))
    table = '\n'.join([
            machine(),
            "",
            "| channel | messages | inbound_email alone (msg/s) "
            "| forfait (msg/s) | ratio |",
            "|---|---|---|---|---|",
            *rows])
    print(table)
    write_section('inbound_email', table)
    summary('inbound_email', figures)


if __name__ == '__main__':
    sys.exit(main())
