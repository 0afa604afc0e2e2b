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
import datetime as dt
import multiprocessing
import os
import random
import sys
import time

import generate
from common import machine, use_postgresql, write_section

HOUR = dt.timedelta(hours=1)
CLIENTS = 3
CREDIT = 40 * HOUR
LINES = [dt.timedelta(minutes=20), dt.timedelta(minutes=15)]
ADMIN = generate.ADMIN


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


def check(name, request_ids):
    "Assert the ledger rules after a run; return the overdraft"
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
    overdraft = check(name, request_ids)
    return count / seconds, restarts, lock_waits, overdraft


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

    source = 'bench_%s' % args.source
    if source not in generate.databases():
        clients, lines = generate.SIZES[args.source]
        generate.generate(source, clients, lines)
    name = 'bench_posting'
    rows, base = [], None
    for workers in args.workers:
        generate.copy_database(source, name)
        rate, restarts, lock_waits, overdraft = run(
            args.uri, name, workers, args.requests)
        base = base or rate
        rows.append('| %s | %s | %.1f | %.2f | %s | %s | %s |' % (
                workers, args.requests, rate, rate / base, restarts,
                lock_waits, format_duration(overdraft)))
        print(rows[-1], flush=True)
        generate.drop_database(name)
    smtp.stop()
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
                "none (asserted)."]))


if __name__ == '__main__':
    sys.exit(main())
