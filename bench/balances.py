"""Benchmark: the parties' balances at each size of generate.py's data.

For each size: the seconds to read the five balance fields of every party
through the ORM (Party.read in a new transaction, as an RPC call does)
against one hand-written SQL aggregate giving the same numbers (asserted
equal), median of the runs; the SQL statements for 1, 100 and 10,000
parties and for marking one request done; the query plans (EXPLAIN ANALYZE)
of one client's balance on the largest size.  --memory SIZE runs in a
process of its own and reports the peak RSS of reading all balances.

The databases bench_<size> are built by generate.py when missing.

Usage: python bench/balances.py [--sizes small large] [--runs N]
    [--memory huge] [--uri postgresql://...]
"""
import argparse
import datetime as dt
import os
import re
import resource
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import generate
from common import machine, summary, timed, use_postgresql, write_section
from psycopg import IsolationLevel

HERE = os.path.dirname(os.path.abspath(__file__))
DESIGN = os.path.join(
    HERE, '..', 'webservice_forfait', 'doc', 'design.rst')
LEDGER_TABLES = ['timesheet_line', 'forfait_consumption']

# The balances as Party.get_forfait_balance defines them, in one statement.
# Pending rounds each open request's billable time up to the unit, with the
# minimum, as Configuration.round does with the 'up' method.
SQL = """
WITH current_credit AS (
    SELECT id, party, hours FROM forfait_credit
    WHERE company = %(company)s AND state != 'expired'
    AND start_date <= %(today)s AND end_date >= %(today)s),
hours AS (
    SELECT party, SUM(hours) AS hours FROM current_credit GROUP BY party),
consumed AS (
    SELECT k.party, SUM(k.duration) AS consumed
    FROM forfait_consumption AS k
    LEFT JOIN current_credit AS c ON c.id = k.credit
    WHERE k.company = %(company)s
    AND ((k.credit IS NULL AND k.invoice_line IS NULL) OR c.id IS NOT NULL)
    GROUP BY k.party),
spent AS (
    SELECT r.party, SUM(l.duration) AS spent
    FROM forfait_request AS r
    JOIN timesheet_line AS l ON l.forfait_request = r.id
    WHERE r.company = %(company)s AND r.state = 'open' AND l.billable
    GROUP BY r.party, r.id),
pending AS (
    SELECT party, SUM(GREATEST(
        CEIL(EXTRACT(EPOCH FROM spent) / %(unit)s) * %(unit)s
        * INTERVAL '1 second', %(minimum)s)) AS pending
    FROM spent WHERE spent > INTERVAL '0' GROUP BY party)
SELECT p.id,
    COALESCE(h.hours, INTERVAL '0'),
    COALESCE(c.consumed, INTERVAL '0'),
    COALESCE(h.hours, INTERVAL '0') - COALESCE(c.consumed, INTERVAL '0'),
    COALESCE(q.pending, INTERVAL '0'),
    COALESCE(h.hours, INTERVAL '0') - COALESCE(c.consumed, INTERVAL '0')
        - COALESCE(q.pending, INTERVAL '0')
FROM party_party AS p
LEFT JOIN hours AS h ON h.party = p.id
LEFT JOIN consumed AS c ON c.party = p.id
LEFT JOIN pending AS q ON q.party = p.id
WHERE p.id = ANY(%(ids)s)
"""


class Database:
    "One generated database, read through trytond and through psycopg"

    def __init__(self, name):
        from trytond.pool import Pool
        self.name = name
        ctx = generate.context(name)
        self.company = ctx['company']
        self.context = {
            'company': ctx['company'], 'companies': [ctx['company']]}
        unit, method, minimum = ctx['rounding']
        assert method == 'up', method
        self.unit = int(unit) * 60
        self.minimum = minimum or dt.timedelta()
        with generate.connect(name) as connection:
            timezone, = connection.execute(
                'SELECT timezone FROM company_company WHERE id = %s',
                (self.company,)).fetchone()
        self.timezone = ZoneInfo(timezone) if timezone else None
        Pool(name).init()
        with self.transaction():
            self.ids = [p.id for p in Pool().get('party.party').search(
                    [], order=[('id', 'ASC')])]

    def transaction(self, readonly=True, **extras):
        from trytond.transaction import Transaction
        return Transaction().start(
            self.name, generate.ADMIN, readonly=readonly,
            context=self.context, **extras)

    def orm(self, ids=None):
        from trytond.pool import Pool
        from webservice_forfait.party import BALANCE_FIELDS
        with self.transaction():
            Party = Pool().get('party.party')
            # the figures the raw SQL computes, in its order
            fields = BALANCE_FIELDS[:5]
            return {r['id']: tuple(r[f] for f in fields)
                for r in Party.read(ids or self.ids, fields)}

    def sql(self, connection):
        """The balances in a transaction of their own, as each RPC call has,
        planned each time as trytond's statements are: psycopg forgets the
        statements it prepared at each ROLLBACK, and trytond ends every
        read-only call with one"""
        today = dt.datetime.now(self.timezone).date()
        with connection.transaction():
            rows = connection.execute(SQL, {
                    'company': self.company, 'today': today,
                    'unit': self.unit, 'minimum': self.minimum,
                    'ids': self.ids}, prepare=False).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    def statements(self, func):
        "Return the statements func sends in a transaction rolled back"
        from webservice_forfait.tests.database import count_queries
        with self.transaction(readonly=False) as transaction:
            func()  # warm the caches
            with count_queries() as queries:
                func()
            transaction.rollback()
        return queries

    def read_count(self, count):
        from trytond.pool import Pool
        from webservice_forfait.party import BALANCE_FIELDS
        ids = self.ids[:count]

        def read():
            Pool().get('party.party').read(ids, BALANCE_FIELDS)
        return len(ids), len(self.statements(read))

    def posting_count(self):
        """Statements to mark done one open request with billable time, in
        the transaction that holds the credits' locks (the RPC layer
        restarts the first one with them)"""
        from trytond.pool import Pool
        from trytond.transaction import TransactionError
        from webservice_forfait.tests.database import count_queries
        with self.transaction() as transaction:
            cursor = transaction.connection.cursor()
            cursor.execute(
                "SELECT r.id FROM forfait_request r "
                "JOIN timesheet_line l ON l.forfait_request = r.id "
                "WHERE r.state = 'open' AND l.billable "
                "GROUP BY r.id ORDER BY r.id LIMIT 2")
            requests = [r[0] for r in cursor]
        counts = []
        for request_id in requests:   # the first warms the caches
            extras = {}
            for _ in range(5):
                with self.transaction(readonly=False, **extras) as transaction:
                    Request = Pool().get('forfait.request')
                    try:
                        with count_queries() as queries:
                            Request.done([Request(request_id)])
                    except TransactionError as error:
                        transaction.rollback()
                        error.fix(extras)
                        continue
                    transaction.rollback()
                    alert = any(
                        'INSERT INTO "forfait_credit_alert"' in q
                        for q in queries)
                    counts.append(
                        '%s%s' % (len(queries), ' (alert)' if alert else ''))
                    break
        return counts[-1]

    def balance_queries(self, party_id):
        "The statements of the balance of one party"
        from trytond.pool import Pool
        from webservice_forfait.party import BALANCE_FIELDS
        from webservice_forfait.tests.database import count_queries
        with self.transaction():
            Party = Pool().get('party.party')
            with count_queries() as queries:
                Party.forfait_balances([party_id], BALANCE_FIELDS)
        return [q for q in queries
            if re.search(r'forfait_(credit|consumption|request)', q)]


def explain(connection, queries):
    "Return the plans of queries and the sequential scans of ledger tables"
    plans, scans = [], []
    for query in queries:
        plan = '\n'.join(r[0] for r in connection.execute(
                'EXPLAIN (ANALYZE, BUFFERS) ' + query))
        plans.append((query, plan))
        scans.extend(
            t for t in LEDGER_TABLES
            if re.search(r'Seq Scan on %s\b' % t, plan))
    return plans, scans


def busiest_party(connection):
    "The party with the most timesheet lines"
    return connection.execute(
        "SELECT r.party FROM timesheet_line l "
        "JOIN forfait_request r ON r.id = l.forfait_request "
        "GROUP BY r.party ORDER BY count(*) DESC LIMIT 1").fetchone()[0]


def memory(size):
    "Print the RSS before and after reading all balances of size (kB)"
    database = Database(generate.ensure(size))
    database.orm(database.ids[:1])
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # reset the peak (VmHWM) to the current RSS, Linux only
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = rss('VmHWM')
    values = database.orm()
    after = rss('VmHWM')
    print('%s %s %s %s' % (len(values), loaded, before, after))


def rss(name):
    "Return the memory figure name of /proc/self/status in kB"
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(name + ':'):
                return int(line.split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['small', 'large'])
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--memory', choices=generate.SIZES)
    parser.add_argument('--rss-only', action='store_true',
        help=argparse.SUPPRESS)
    parser.add_argument('--uri', default=generate.DEFAULT_URI)
    args = parser.parse_args()
    os.environ.setdefault('BENCH_TEMPLATE', generate.template_name())
    use_postgresql(args.uri, os.environ['BENCH_TEMPLATE'])
    if args.rss_only:
        return memory(args.memory)

    balance_rows, count_rows, figures = [], [], []
    for size in args.sizes:
        name = generate.ensure(size)
        database = Database(name)
        lines = generate.counts(name)['timesheet_line']
        with generate.connect(name, autocommit=True) as connection:
            # the transactions of trytond's read-only calls
            connection.isolation_level = IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            # short reads are noisy: 2 s of samples at least
            sql, sql_values = timed(
                lambda: database.sql(connection), args.runs, 2)
            orm, orm_values = timed(database.orm, args.runs, 2)
            one, _ = timed(
                lambda: database.orm(database.ids[:1]), args.runs, 2)
            assert orm_values == sql_values, [
                (k, orm_values[k], sql_values.get(k)) for k in orm_values
                if orm_values[k] != sql_values.get(k)][:5]
        balance_rows.append(
            '| %s | %s | %s | %.4f | %.4f | %.2f | %.4f | %.2f |' % (
                size, f"{len(database.ids):,}", f"{lines:,}", orm, sql,
                orm / sql, one, orm / lines * 1e6))
        figures.append((
                "balances of all %s parties (%s)" % (
                    f"{len(database.ids):,}", size),
                "%.4f s ORM" % orm, "%.4f s SQL" % sql, "%.2f" % (orm / sql)))
        reads = [database.read_count(n) for n in [1, 100, 10_000]]
        count_rows.append('| %s | %s | %s |' % (
                size, ' | '.join('%s (%s)' % (c, f"{n:,}") for n, c in reads),
                database.posting_count()))
        print(balance_rows[-1], count_rows[-1], sep='\n', flush=True)
        generate.close_pool(name)

    largest = args.sizes[-1]
    database = Database('bench_%s' % largest)
    with generate.connect(database.name) as connection:
        party = busiest_party(connection)
        plans, scans = explain(connection, database.balance_queries(party))
    for query, plan in plans:
        print(query, plan, sep='\n', end='\n\n')
    assert not scans, scans
    write_plans(largest, plans)

    runs = (" Median of %s runs or more (2 s at least) after a warm-up."
        % args.runs)
    write_section('balances', '\n'.join([
                machine() + runs, "",
                "| size | parties | timesheet lines | ORM (s) | SQL (s) "
                "| ratio | ORM, one party (s) | ORM µs per line |",
                "|---|---|---|---|---|---|---|---|",
                *balance_rows]))
    summary('balances', figures)
    write_section('query_counts', '\n'.join([
                machine(), "",
                "| size | read 1 party | read 100 | read 10,000 "
                "| post 1 request |",
                "|---|---|---|---|---|",
                *count_rows, "",
                "Parties actually read in brackets (a size may have fewer). "
                "The ORM computes function fields 2,000 records at a time "
                "(trytond's record cache size), so the balance query is "
                "sent once per 2,000 parties.",
                "A posting that makes a credit cross an alert threshold "
                "(marked *alert*) also stores the alert and its e-mail.",
                "Plans of one client's balance on %s: no sequential scan of "
                "%s (see doc/design.rst, *Indexes and query plans*)." % (
                    largest, ' or '.join(LEDGER_TABLES))]))

    if args.memory:
        generate.ensure(args.memory)
        output = subprocess.run(
            [sys.executable, __file__, '--memory', args.memory, '--rss-only',
                '--uri', args.uri],
            check=True, capture_output=True, text=True).stdout
        count, loaded, before, after = map(int, output.split()[-4:])
        row = '| %s | %s | %.0f | %.0f | %.0f | %.0f |' % (
            args.memory, f"{count:,}", loaded / 1024, before / 1024,
            after / 1024, (after - before) / 1024)
        print(row)
        summary('memory', [(
                    "peak RSS reading all balances (%s)" % args.memory,
                    "%.0f MB" % (after / 1024),
                    "%.0f MB before the read" % (before / 1024),
                    "+%.0f MB" % ((after - before) / 1024))])
        write_section('memory', '\n'.join([
                    machine(), "",
                    "| size | parties | peak after loading the pool (MB) "
                    "| RSS before the read (MB) | peak during the read (MB) "
                    "| growth (MB) |",
                    "|---|---|---|---|---|---|",
                    row]))


def write_plans(size, plans):
    "Replace the plans' summary in doc/design.rst"
    begin = '.. plans: begin\n'
    end = '.. plans: end\n'
    with open(DESIGN, encoding='utf-8') as f:
        content = f.read()
    if begin not in content:
        return
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    lines = ['Measured on the *%s* data set (%s)::' % (
            size, time.strftime('%Y-%m-%d')), '']
    for query, plan in plans:
        tables = sorted(set(re.findall(r'FROM "?(\w+)"?', query)))
        lines.append('    -- %s' % ', '.join(tables))
        for line in plan.splitlines():
            if re.search(r'Scan|Join|Nested Loop|Aggregate|Append|Gather'
                    r'|Execution Time', line):
                line = re.sub(r' \(cost=[^)]*\)', '', line)
                lines.append('    ' + line.rstrip())
        lines.append('')
    with open(DESIGN, 'w', encoding='utf-8') as f:
        f.write(head + begin + '\n' + '\n'.join(lines) + '\n' + end + tail)


if __name__ == '__main__':
    sys.exit(main())
