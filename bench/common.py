"What the benchmarks share: a PostgreSQL database and BENCHMARKS.md"
import os
import platform
import time

BENCHMARKS = os.path.join(os.path.dirname(__file__), '..', 'BENCHMARKS.md')


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
