"""Portal under load: clients with 10 and with 5,000 requests, two workers.

On a copy of a data set of generate.py (large by default) with one more
client whose history holds over 5,000 requests, the dashboard and the
request list of that client and of a client with 10 requests are loaded by
wrk on loopback against two trytond workers under gunicorn, beside the route
that only checks the session (the baseline).  The SQL statements of each
page are counted for both clients, and the peak RSS of the workers is read
after the load.

Usage: python bench/portal.py [--size large] [--seconds 10]
    [--uri postgresql://...]
"""
import argparse
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import (  # noqa: E402
    free_port, machine, peak_rss, start_workers, summary, use_postgresql,
    workers_of, write_section)

NAME = 'bench_portal'
# one client with a long history: about 3.5 lines a request
HEAVY_INDEX, HEAVY_LINES, HEAVY_REQUESTS = 99_999, 18_000, 5_000
TYPICAL_REQUESTS = 10
PASSWORD = 'Bench-Portal-2026'
PAGES = [('session', 'session'), ('dashboard', ''), ('requests', 'requests')]
WRK_SCRIPT = '''
done = function(summary, latency, requests)
    io.write(string.format("P95 %d\\n", latency:percentile(95)))
    io.write(string.format("ERRORS %d\\n", summary.errors.status
        + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout))
end
'''


def clients_by_history():
    """The party whose request count is nearest TYPICAL_REQUESTS and the one
    with the most, with their counts"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(NAME, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(
            'SELECT party, count(*) FROM forfait_request '
            'WHERE party IS NOT NULL GROUP BY party ORDER BY party')
        rows = cursor.fetchall()
        Pool()  # keep the pool loaded
    typical = min(rows, key=lambda r: abs(r[1] - TYPICAL_REQUESTS))
    heavy = max(rows, key=lambda r: r[1])
    assert heavy[1] >= HEAVY_REQUESTS, heavy
    return typical, heavy


def create_accounts(party_ids):
    "A portal login for each party; return their e-mails"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    emails = []
    with Transaction().start(NAME, 0) as transaction:
        pool = Pool()
        User = pool.get('web.user')
        Config = pool.get('forfait.configuration')
        config = Config(1)
        config.portal_url = 'http://127.0.0.1/%s/portal' % NAME
        config.save()
        for party_id in party_ids:
            email = 'portal-%s@bench.mq' % party_id
            User.create([{
                        'email': email, 'party': party_id,
                        'password': PASSWORD}])
            emails.append(email)
        transaction.commit()
    return emails


def sign_in(client, email):
    page = client.get('/%s/portal/login' % NAME)
    token = re.search(
        r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True)
        ).group(1)
    response = client.post('/%s/portal/login' % NAME, data={
            'email': email, 'password': PASSWORD, 'csrf_token': token})
    assert response.status_code == 303, response.status_code
    return client.get_cookie(
        'forfait_session', path='/%s/portal' % NAME).value


def query_counts(emails):
    "Statements per page for each client, through the WSGI application"
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    from trytond.wsgi import app
    from webservice_forfait.tests.database import count_queries
    counts, sessions = {}, {}
    for email in emails:
        client = Client(app, Response)
        sessions[email] = sign_in(client, email)
        for page, path in PAGES:
            url = '/%s/portal/%s' % (NAME, path)
            client.get(url)
            with count_queries() as queries:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            counts[email, page] = len(queries)
    return counts, sessions


def wrk(url, session, seconds, folder):
    script = os.path.join(folder, 'p95.lua')
    with open(script, 'w') as f:
        f.write(WRK_SCRIPT)
    out = subprocess.run([
            'wrk', '-t2', '-c8', '-d%ss' % seconds, '-s', script,
            '-H', 'Cookie: forfait_session=%s' % session, url],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    p95 = int(re.search(r'P95 (\d+)', out).group(1)) / 1000
    errors = int(re.search(r'ERRORS (\d+)', out).group(1))
    non_2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return rate, p95, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--uri', default='postgresql://postgres@127.0.0.1:5432/')
    parser.add_argument('--seconds', type=int, default=10)
    parser.add_argument('--size', default='large')
    args = parser.parse_args()
    if not shutil.which('wrk'):
        sys.exit("wrk is missing (apt-get install wrk)")
    import generate
    os.environ.setdefault('BENCH_TEMPLATE', generate.template_name())
    use_postgresql(args.uri, os.environ['BENCH_TEMPLATE'])
    source = generate.ensure(args.size)
    start = time.perf_counter()
    generate.copy_database(source, NAME)
    generate.add_client(NAME, HEAVY_INDEX, HEAVY_LINES, seed=7)
    build = time.perf_counter() - start
    (typical, typical_count), (heavy, heavy_count) = clients_by_history()
    emails = create_accounts([typical, heavy])
    counts, sessions = query_counts(emails)

    folder = tempfile.mkdtemp()
    port = free_port()
    server = start_workers(args.uri, NAME, port, folder)
    loads = [(page, path, email, count)
        for page, path in PAGES
        for email, count in zip(emails, [typical_count, heavy_count])
        if page != 'session' or email == emails[0]]
    try:
        results = {}
        for page, path, email, count in loads:
            url = 'http://127.0.0.1:%s/%s/portal/%s' % (port, NAME, path)
            wrk(url, sessions[email], 2, folder)  # warm both workers
            results[page, count] = wrk(
                url, sessions[email], args.seconds, folder)
            print(page, count, results[page, count], flush=True)
        rss = max(peak_rss(p) for p in workers_of(server))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(folder)
        generate.drop_database(NAME)

    base_rate = results['session', typical_count][0]
    clients, lines = generate.SIZES[args.size]
    lines = [
        machine(),
        "",
        "Data: the *%s* data set (%s clients, %s timesheet lines) and one "
        "more client with %s requests (copied and added in %s); two trytond "
        "workers under gunicorn; `wrk -t2 -c8 -d%ss` on loopback."
        % (args.size, f"{clients:,}", f"{lines:,}", f"{heavy_count:,}",
            dt.timedelta(seconds=round(build)), args.seconds),
        "",
        "| page | client's requests | requests/s | p95 (ms) | errors "
        "| ratio to session check (time per request) |",
        "|---|---|---|---|---|---|",
        ]
    figures = []
    for page, _, _, count in loads:
        rate, p95, errors = results[page, count]
        lines.append("| %s | %s | %.0f | %.1f | %s | %.2f |" % (
                page, f"{count:,}" if page != 'session' else '',
                rate, p95, errors, base_rate / rate))
        if page != 'session':
            figures.append((
                    "%s of a client with %s requests (%s)" % (
                        page, f"{count:,}", args.size),
                    "%.0f req/s, p95 %.0f ms" % (rate, p95),
                    "%.0f req/s session check" % base_rate,
                    "%.2f" % (base_rate / rate)))
    figures.append((
            "peak RSS of a portal worker (%s)" % args.size, "%.0f MB" % rss,
            "", ""))
    lines += [
        "",
        "SQL statements per page:",
        "",
        "| page | client with %s requests | client with %s requests |"
        % (typical_count, f"{heavy_count:,}"),
        "|---|---|---|",
        ]
    for page, _ in PAGES:
        lines.append("| %s | %s | %s |" % (
                page, counts[emails[0], page], counts[emails[1], page]))
    lines += ["", "Peak RSS of a worker after the load: %.0f MB." % rss]
    text = '\n'.join(lines)
    print(text)
    write_section('portal', text)
    summary('portal', figures)


if __name__ == '__main__':
    main()
