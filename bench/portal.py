"""Portal under load: 1,000 clients, 100,000 timesheet lines, two workers.

The dashboard and the request list of the client with the longest history
are loaded by wrk on loopback against two trytond workers under gunicorn,
beside the route that only checks the session (the baseline). The SQL
statements of each page are counted for the clients with the shortest and
the longest history, and the peak RSS of the workers is read after the load.

Usage: python bench/portal.py [--uri postgresql://...] [--seconds 10]
    [--clients 1000 --lines 100000]
"""
import argparse
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import machine, use_postgresql, write_section  # noqa: E402

NAME = 'bench_portal'
CLIENTS, LINES = 1_000, 100_000
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


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextmanager
def count_queries():
    queries = []
    logger = logging.getLogger('trytond.backend.postgresql.database')
    handler = logging.Handler()
    handler.emit = lambda record: queries.append(record.getMessage())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield queries
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.WARNING)


def clients_by_history():
    "The parties with the fewest and the most requests"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    with Transaction().start(NAME, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(
            'SELECT party, count(*) FROM forfait_request '
            'WHERE party IS NOT NULL GROUP BY party ORDER BY 2, 1')
        rows = cursor.fetchall()
        Pool()  # keep the pool loaded
    return rows[0], rows[-1]


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


def start_workers(uri, port, folder):
    conf = os.path.join(folder, 'trytond.conf')
    with open(conf, 'w') as f:
        f.write('[database]\nuri = %s\n[web]\nlisten = 127.0.0.1:%s\n'
            % (uri, port))
    env = dict(os.environ, TRYTOND_CONFIG=conf,
        TRYTOND_DATABASE_NAMES=NAME, TRYTOND_LOGGING_LEVEL='30')
    gunicorn = os.path.join(os.path.dirname(sys.executable), 'gunicorn')
    server = subprocess.Popen([
            gunicorn, '--workers', '2', '--bind', '127.0.0.1:%s' % port,
            '--log-level', 'warning', 'trytond.application:app'],
        env=env)
    for _ in range(300):
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            break
        except OSError:
            time.sleep(0.2)
    return server


def workers_of(server):
    out = subprocess.run(['pgrep', '-P', str(server.pid)],
        capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def peak_rss(pid):
    "VmHWM of a process in MB"
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024


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
    parser.add_argument('--clients', type=int, default=CLIENTS)
    parser.add_argument('--lines', type=int, default=LINES)
    args = parser.parse_args()
    if not shutil.which('wrk'):
        sys.exit("wrk is missing (apt-get install wrk)")
    use_postgresql(args.uri, NAME)
    import generate
    print("Building %s clients, %s lines..." % (args.clients, args.lines),
        flush=True)
    build = generate.generate(NAME, args.clients, args.lines, seed=7)
    (small, small_count), (big, big_count) = clients_by_history()
    emails = create_accounts([small, big])
    counts, sessions = query_counts(emails)

    folder = tempfile.mkdtemp()
    port = free_port()
    server = start_workers(args.uri, port, folder)
    try:
        results = {}
        for page, path in PAGES:
            url = 'http://127.0.0.1:%s/%s/portal/%s' % (port, NAME, path)
            wrk(url, sessions[emails[1]], 2, folder)  # warm both workers
            results[page] = wrk(
                url, sessions[emails[1]], args.seconds, folder)
            print(page, results[page], flush=True)
        rss = max(peak_rss(p) for p in workers_of(server))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(folder)
        generate.drop_database(NAME)

    base_rate, base_p95, _ = results['session']
    lines = [
        machine(),
        "",
        "Data: %s clients, %s timesheet lines (built in %.0f s); "
        "two trytond workers under gunicorn; `wrk -t2 -c8 -d%ss` on "
        "loopback as the client with the longest history (%s requests)."
        % (args.clients, args.lines, build, args.seconds, big_count),
        "",
        "| page | requests/s | p95 (ms) | errors | ratio to session check "
        "(time per request) |",
        "|---|---|---|---|---|",
        ]
    for page, _ in PAGES:
        rate, p95, errors = results[page]
        lines.append("| %s | %.0f | %.1f | %s | %.2f |" % (
                page, rate, p95, errors, base_rate / rate))
    lines += [
        "",
        "SQL statements per page (same count whatever the history):",
        "",
        "| page | client with %s requests | client with %s requests |"
        % (small_count, big_count),
        "|---|---|---|",
        ]
    for page, _ in PAGES:
        lines.append("| %s | %s | %s |" % (
                page, counts[emails[0], page], counts[emails[1], page]))
    lines += ["", "Peak RSS of a worker after the load: %.0f MB." % rss]
    text = '\n'.join(lines)
    print(text)
    write_section('portal', text)


if __name__ == '__main__':
    main()
