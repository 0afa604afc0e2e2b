"What the benchmarks share: PostgreSQL, gunicorn workers, BENCHMARKS.md"
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

BENCHMARKS = os.path.join(os.path.dirname(__file__), '..', 'BENCHMARKS.md')
# the headline figures of each benchmark, for the summary table
FIGURES = os.path.join(os.path.dirname(__file__), 'figures.json')
SUMMARY = [
    ('inbound_email', "E-mail ingestion"), ('report', "Update report"),
    ('portal', "Client portal"), ('balances', "Balances"),
    ('posting', "Posting"), ('memory', "Memory"),
    ('request_list', "Request list")]


def use_postgresql(uri, name='bench_forfait'):
    "Point trytond's test helpers at a fresh database on PostgreSQL"
    os.environ['TRYTOND_DATABASE__URI'] = uri
    os.environ['DB_NAME'] = name


def activate():
    "Create the database with the module activated and return its name"
    from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
    drop_db()
    activate_module(['webservice_forfait'])
    return DB_NAME


def timed(func, runs, seconds=0):
    """Return the median duration of func over runs (more while under
    seconds: short runs are noisy), after one warm-up, and its result"""
    result = func()
    durations = []
    while len(durations) < runs or sum(durations) < seconds:
        start = time.perf_counter()
        func()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), result


def machine():
    return "Measured %s on %s (Python %s, %s cores), PostgreSQL, with " \
        "`make bench`." % (
            time.strftime('%Y-%m-%d'), platform.node(),
            platform.python_version(), os.cpu_count())


def write_section(name, text):
    "Replace the section of BENCHMARKS.md between the markers of name"
    begin, end = '<!-- %s -->' % name, '<!-- /%s -->' % name
    with open(BENCHMARKS, encoding='utf-8') as f:
        content = f.read()
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(BENCHMARKS, 'w', encoding='utf-8') as f:
        f.write(head + begin + '\n' + text + '\n' + end + tail)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_workers(uri, name, port, folder, workers=2):
    "Start trytond under gunicorn on port, serving database name"
    conf = os.path.join(folder, 'trytond.conf')
    with open(conf, 'w') as f:
        f.write('[database]\nuri = %s\n[web]\nlisten = 127.0.0.1:%s\n'
            % (uri, port))
    env = dict(os.environ, TRYTOND_CONFIG=conf,
        TRYTOND_DATABASE_NAMES=name, TRYTOND_LOGGING_LEVEL='30')
    gunicorn = os.path.join(os.path.dirname(sys.executable), 'gunicorn')
    server = subprocess.Popen([
            gunicorn, '--workers', str(workers),
            '--bind', '127.0.0.1:%s' % port,
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


def summary(bench, rows):
    """Keep rows, (what, figure, baseline, ratio), as the headline figures
    of bench and rewrite the summary table of BENCHMARKS.md"""
    figures = {}
    if os.path.exists(FIGURES):
        with open(FIGURES, encoding='utf-8') as f:
            figures = json.load(f)
    figures[bench] = {'date': time.strftime('%Y-%m-%d'), 'rows': rows}
    with open(FIGURES, 'w', encoding='utf-8') as f:
        json.dump(figures, f, indent=1, ensure_ascii=False)
        f.write('\n')
    lines = [
        "| benchmark | what | figure | baseline (same run) | ratio "
        "| measured |",
        "|---|---|---|---|---|---|"]
    for name, title in SUMMARY:
        for what, figure, baseline, ratio in figures.get(name, {}).get(
                'rows', []):
            lines.append('| %s | %s | %s | %s | %s | %s |' % (
                    title, what, figure, baseline, ratio,
                    figures[name]['date']))
    write_section('summary', '\n'.join(lines))
