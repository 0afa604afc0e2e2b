"""Benchmark: requests marked done per second by concurrent workers.

On a copy of the small data set, a few clients get a credit each and many
open requests, more than their credits hold.  1, 2 and 4 worker processes
then mark those requests done at the same time, one request per transaction
retried as Tryton's RPC layer does (a first attempt that finds the credits
unlocked is restarted holding their locks; a lock held by another worker is
a lock wait, retried).  The update reports are queued for trytond-worker
([queue] worker) and mail goes to an SMTP server on loopback, as deployed.
After each run the ledger is checked: no credit consumed beyond its hours,
what they could not cover as overdraft (credit NULL), each done request's
consumptions equal to its billed time, no deadlock, no error.

Usage: python bench/posting.py [--requests N] [--workers 1 2 4]
    [--uri postgresql://...]
"""
import argparse
import base64
import datetime as dt
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request

import generate
from common import (
    free_port, machine, start_workers, summary, use_postgresql, write_section)

HOUR = dt.timedelta(hours=1)
CLIENTS = 3
CREDIT = 40 * HOUR
LINES = [dt.timedelta(minutes=20), dt.timedelta(minutes=15)]
ADMIN = generate.ADMIN
PASSWORD = 'Bench-Posting-2026'


def set_up(name, count):
    """Give CLIENTS new clients a credit each and count open requests
    between them; return the context and the requests' ids"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    ctx = generate.context(name)
    context = {'company': ctx['company'], 'companies': [ctx['company']]}
    with Transaction().start(name, ADMIN, context=context) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        today = pool.get('ir.date').today()
        parties = Party.create([{
                    'name': "Bench posting %s" % i,
                    'contact_mechanisms': [('create', [{
                                    'type': 'email',
                                    'value': 'posting%s@example.mq' % i}])],
                    } for i in range(CLIENTS)])
        Credit.create([{
                    'party': p.id, 'company': ctx['company'],
                    'hours': CREDIT, 'start_date': today,
                    'end_date': today + dt.timedelta(days=364),
                    'reason': "Bench"} for p in parties])
        requests = Request.create([{
                    'party': parties[i % CLIENTS].id,
                    'company': ctx['company'],
                    'contact': parties[i % CLIENTS].contact_mechanisms[0].id,
                    'subject': "Mise à jour %s" % i} for i in range(count)])
        Request.open(requests)
        Line.create([{
                    'forfait_request': r.id, 'duration': duration,
                    'employee': ctx['employees'][i % len(ctx['employees'])],
                    'description': "Modification"}
                for i, r in enumerate(requests) for duration in LINES])
        transaction.commit()
        return context, [r.id for r in requests]


def worker(uri, name, context, request_ids, start, results):
    "Mark request_ids done, one per transaction, as the RPC layer retries"
    os.environ['TRYTOND_DATABASE__URI'] = uri
    from trytond import backend
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError
    Pool(name).init()
    restarts = lock_waits = deadlocks = 0
    errors = []
    start.wait()
    for request_id in request_ids:
        extras = {}
        for _ in range(1000):
            try:
                with Transaction().start(
                        name, ADMIN, context=context, **extras
                        ) as transaction:
                    try:
                        Request = Pool().get('forfait.request')
                        Request.done([Request(request_id)])
                    except TransactionError as error:
                        transaction.rollback()
                        error.fix(extras)
                        restarts += 1
                        continue
                    transaction.commit()
                    break
            except backend.DatabaseOperationalError as error:
                if getattr(error, 'sqlstate', None) == '40P01':
                    deadlocks += 1
                else:
                    lock_waits += 1
                time.sleep(random.uniform(0.005, 0.02))
            except Exception as error:
                errors.append(repr(error))
                break
        else:
            errors.append("gave up on %s" % request_id)
    results.put((restarts, lock_waits, deadlocks, errors))


def check(name, context, request_ids):
    """Assert the ledger rules and the clients' balances after a run;
    return the overdraft"""
    with generate.connect(name) as connection:
        over = connection.execute(
            "SELECT c.id, c.hours, SUM(k.duration) FROM forfait_credit c "
            "JOIN forfait_consumption k ON k.credit = c.id "
            "GROUP BY c.id HAVING SUM(k.duration) > c.hours").fetchall()
        assert not over, over
        wrong_state = connection.execute(
            "SELECT c.id FROM forfait_credit c "
            "LEFT JOIN forfait_consumption k ON k.credit = c.id "
            "WHERE c.state != 'expired' GROUP BY c.id "
            "HAVING (COALESCE(SUM(k.duration), INTERVAL '0') >= c.hours) "
            "!= (c.state = 'exhausted')").fetchall()
        assert not wrong_state, wrong_state
        states = dict(connection.execute(
            "SELECT state, count(*) FROM forfait_request "
            "WHERE id = ANY(%s) GROUP BY state", (request_ids,)).fetchall())
        assert states == {'done': len(request_ids)}, states
        unbalanced = connection.execute(
            "SELECT r.id, r.billed, SUM(k.duration) FROM forfait_request r "
            "LEFT JOIN forfait_consumption k ON k.request = r.id "
            "WHERE r.id = ANY(%s) GROUP BY r.id "
            "HAVING COALESCE(SUM(k.duration), INTERVAL '0') != r.billed",
            (request_ids,)).fetchall()
        assert not unbalanced, unbalanced
        covered, overdraft, billed, credited = connection.execute(
            "SELECT COALESCE(SUM(k.duration) FILTER ("
            "WHERE k.credit IS NOT NULL), INTERVAL '0'), "
            "COALESCE(SUM(k.duration) FILTER ("
            "WHERE k.credit IS NULL), INTERVAL '0'), "
            "(SELECT SUM(billed) FROM forfait_request WHERE id = ANY(%s)), "
            "(SELECT SUM(c.hours) FROM forfait_credit c WHERE c.party IN "
            "(SELECT party FROM forfait_request WHERE id = ANY(%s))) "
            "FROM forfait_consumption k WHERE k.request = ANY(%s)",
            (request_ids, request_ids, request_ids)).fetchone()
        # no lost update: the credits gave all they hold, no more
        assert covered == min(billed, credited), (covered, billed, credited)
        assert covered + overdraft == billed
        expected = dict(connection.execute(
            "SELECT party, SUM(billed) FROM forfait_request "
            "WHERE id = ANY(%s) GROUP BY party", (request_ids,)).fetchall())
    # the balances the staff and the portal read, through the ORM
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(name, ADMIN, context=context):
        Party = Pool().get('party.party')
        for party in Party.browse(list(expected)):
            assert party.forfait_remaining == CREDIT - expected[party.id], (
                party.forfait_remaining, expected[party.id])
            assert not party.forfait_pending, party.forfait_pending
    generate.close_pool(name)
    return overdraft


def run(uri, name, workers, count):
    "Return requests per second, restarts, lock waits and the overdraft"
    context, request_ids = set_up(name, count)
    generate.close_pool(name)
    spawn = multiprocessing.get_context('spawn')
    start, results = spawn.Event(), spawn.Queue()
    processes = [
        spawn.Process(target=worker, args=(
                uri, name, context, request_ids[i::workers], start, results))
        for i in range(workers)]
    for process in processes:
        process.start()
    time.sleep(8)  # let every worker load its pool
    begin = time.perf_counter()
    start.set()
    outcomes = [results.get() for _ in processes]
    seconds = time.perf_counter() - begin
    for process in processes:
        process.join()
    restarts = sum(o[0] for o in outcomes)
    lock_waits = sum(o[1] for o in outcomes)
    deadlocks = sum(o[2] for o in outcomes)
    errors = [e for o in outcomes for e in o[3]]
    assert not errors, errors[:5]
    assert not deadlocks, deadlocks
    overdraft = check(name, context, request_ids)
    return count / seconds, restarts, lock_waits, overdraft


class RPC:
    "A JSON-RPC client of the database name at url, signed in as admin"

    def __init__(self, url, name):
        self.url = '%s/%s/rpc/' % (url, name)
        self.auth = None
        user_id, session = self.call(
            'common.db.login', 'admin', {'password': PASSWORD}, 'en')[:2]
        self.auth = 'Session ' + base64.b64encode(
            ('admin:%s:%s' % (user_id, session)).encode()).decode()

    def call(self, method, *params):
        headers = {'Content-Type': 'application/json'}
        if self.auth:
            headers['Authorization'] = self.auth
        request = urllib.request.Request(self.url, json.dumps({
                    'id': 1, 'method': method, 'params': params}).encode(),
            headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer.get('error'):
            raise RuntimeError(answer['error'])
        return answer['result']


def run_http(uri, name, workers, clients, count):
    """Return requests per second and the calls the clients had to repeat,
    marking requests done through JSON-RPC calls of clients threads to
    workers trytond processes under gunicorn"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    context, request_ids = set_up(name, count)
    with Transaction().start(name, 0) as transaction:
        User = Pool().get('res.user')
        User.write([User(ADMIN)], {'password': PASSWORD})
        transaction.commit()
    generate.close_pool(name)
    folder, port = tempfile.mkdtemp(), free_port()
    server = start_workers(uri, name, port, folder, workers)
    repeated, errors = [], []

    def client(ids):
        rpc = RPC('http://127.0.0.1:%s' % port, name)
        for request_id in ids:
            for attempt in range(20):
                try:
                    rpc.call(
                        'model.forfait.request.done', [request_id], context)
                    break
                except RuntimeError as error:
                    # the RPC layer's retries ran out: a user clicks again
                    repeated.append(repr(error))
                    time.sleep(random.uniform(0.05, 0.2))
                except Exception as error:
                    errors.append((request_id, repr(error)))
                    break
            else:
                errors.append((request_id, "gave up"))
    try:
        warm = [threading.Thread(target=RPC, args=(
                    'http://127.0.0.1:%s' % port, name))
            for _ in range(2 * workers)]  # every worker loads its pool
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        threads = [threading.Thread(target=client, args=(
                    request_ids[i::clients],)) for i in range(clients)]
        begin = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - begin
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(folder)
    assert not errors, (errors, repeated[:3])
    return count / seconds, len(repeated), check(name, context, request_ids)


def format_duration(duration):
    from webservice_forfait.ledger import format_duration
    return format_duration(duration)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=240)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--source', default='small')
    parser.add_argument('--uri', default=generate.DEFAULT_URI)
    args = parser.parse_args()
    os.environ.setdefault('BENCH_TEMPLATE', generate.template_name())
    use_postgresql(args.uri, os.environ['BENCH_TEMPLATE'])

    from webservice_forfait.tests.smtp_server import SMTPServer
    smtp = SMTPServer().start()
    os.environ['TRYTOND_EMAIL__URI'] = smtp.uri
    os.environ['TRYTOND_QUEUE__WORKER'] = 'True'
    import trytond.config as config
    config.set('email', 'uri', smtp.uri)
    config.set('queue', 'worker', 'True')

    source = generate.ensure(args.source)
    name = 'bench_posting'
    rows, base, figures = [], None, []
    for workers in args.workers:
        generate.copy_database(source, name)
        rate, restarts, lock_waits, overdraft = run(
            args.uri, name, workers, args.requests)
        base = base or rate
        rows.append('| %s | %s | %.1f | %.2f | %s | %s | %s |' % (
                workers, args.requests, rate, rate / base, restarts,
                lock_waits, format_duration(overdraft)))
        figures.append((
                "requests marked done by %s worker process%s" % (
                    workers, 'es' if workers > 1 else ''),
                "%.1f req/s" % rate, "%.1f req/s 1 worker" % base,
                "%.2f" % (rate / base)))
        print(rows[-1], flush=True)
        generate.drop_database(name)
    http_rows = []
    for workers, clients in [(2, 4)]:
        generate.copy_database(source, name)
        rate, repeated, overdraft = run_http(
            args.uri, name, workers, clients, args.requests)
        http_rows.append('| %s | %s | %s | %.1f | %.2f | %s | %s |' % (
                workers, clients, args.requests, rate, rate / base,
                repeated, format_duration(overdraft)))
        figures.append((
                "requests marked done over JSON-RPC, %s gunicorn workers, "
                "%s clients" % (workers, clients),
                "%.1f req/s" % rate, "%.1f req/s 1 worker" % base,
                "%.2f" % (rate / base)))
        print(http_rows[-1], flush=True)
        generate.drop_database(name)
    smtp.stop()
    summary('posting', figures)
    write_section('posting', '\n'.join([
                machine() + " %s clients, one %s credit each, %s requests "
                "billed 0:45 each on the *%s* data set." % (
                    CLIENTS, format_duration(CREDIT), args.requests,
                    args.source),
                "",
                "| workers | requests | requests/s | ratio to 1 worker "
                "| restarts | lock waits | overdraft |",
                "|---|---|---|---|---|---|---|",
                *rows, "",
                "Restarts: first attempts rolled back to take the credits' "
                "locks (one per posting that finds a usable credit, by "
                "design; none once the credits are used up). Lock waits: "
                "attempts "
                "that found a credit locked by another worker. "
                "Deadlocks, errors, over-consumption and lost updates: "
                "none (asserted).",
                "",
                "The same postings sent as JSON-RPC calls "
                "(`model.forfait.request.done`) by client threads to "
                "trytond workers under gunicorn behind one address, the "
                "retries being those of Tryton's RPC layer "
                "(`[database] retry`, 5); a call whose retries all found "
                "the credits locked returns an error and the client sends "
                "it again, as a user would (*repeated*). The ledger and the "
                "balances are checked as above after the load.",
                "",
                "| gunicorn workers | clients | requests | requests/s "
                "| ratio to 1 worker | repeated | overdraft |",
                "|---|---|---|---|---|---|---|",
                *http_rows]))


if __name__ == '__main__':
    sys.exit(main())
