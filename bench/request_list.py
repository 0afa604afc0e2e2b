"""Benchmark: the staff's request list on generate.py's data.

What the web client asks when a staff member opens Forfaits > Requests: the
count of each tab, the first 1,000 ids of the tab (the client's default
limit), then the list view's columns of the rows shown (PAGE). Measured
through the ORM in a read-only transaction per call, as an RPC call is, with
the list view's columns today against the columns the list had before the
helpdesk (number, date, client, subject, category, channel, times, state),
in the same run; and the statements of a page of each.

Usage: python bench/request_list.py [--size large] [--runs N]
    [--uri postgresql://...]
"""
import argparse
import os

import generate
from balances import Database
from common import machine, summary, timed, use_postgresql, write_section

PAGE = 80
OLD_COLUMNS = [
    'number', 'request_date', 'party', 'subject', 'category', 'channel',
    'time_spent', 'time_billed', 'state']


def list_columns(Request):
    "The fields the list view shows, with the names of the relations"
    fields = Request.fields_view_get(view_type='tree')['fields']
    return read_names(Request, fields)


def read_names(Request, names):
    "The fields as the web client reads them: relations with their name"
    names = list(names)
    for name in list(names):
        if Request._fields[name]._type == 'many2one':
            names.append(name + '.rec_name')
    return names


def tabs(database):
    "The request action's tabs that show a count, their domains decoded"
    from trytond.pool import Pool
    from trytond.pyson import PYSONDecoder
    with database.transaction():
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        Domain = pool.get('ir.action.act_window.domain')
        action = ModelData.get_id('webservice_forfait', 'act_request_form')
        decoder = PYSONDecoder({'_user': generate.ADMIN})
        return [(d.name, decoder.decode(d.domain) if d.domain else [])
            for d in Domain.search([
                    ('act_window', '=', action), ('count', '=', True)],
                order=[('sequence', 'ASC')])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='large', choices=generate.SIZES)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--uri', default=generate.DEFAULT_URI)
    args = parser.parse_args()
    os.environ.setdefault('BENCH_TEMPLATE', generate.template_name())
    use_postgresql(args.uri, os.environ['BENCH_TEMPLATE'])
    name = generate.ensure(args.size)
    database = Database(name)
    from trytond.pool import Pool

    domain = [('state', '=', 'open')]
    with database.transaction():
        Request = Pool().get('forfait.request')
        ids = [r.id for r in Request.search(domain, limit=1000)]
        requests = len(ids)
        new_columns = list_columns(Request)
        old_columns = read_names(Request, OLD_COLUMNS)
    page = ids[:PAGE]

    def search():
        with database.transaction():
            Pool().get('forfait.request').search(domain, limit=1000)

    def read(columns):
        def read():
            with database.transaction():
                Pool().get('forfait.request').read(page, columns)
        return read

    def count(tab_domain):
        def count():
            with database.transaction():
                Pool().get('forfait.request').search_count(tab_domain)
        return count

    searched, _ = timed(search, args.runs, 2)
    rows = ['| search of the Open tab (1,000 ids) | %.4f | | |' % searched]
    seconds = {}
    for label, columns in [
            ("columns before the helpdesk", old_columns),
            ("columns today", new_columns)]:
        seconds[label], _ = timed(read(columns), args.runs, 2)
        statements = database.statements(
            lambda: Pool().get('forfait.request').read(page, columns))
        rows.append('| %s rows, %s (%s) | %.4f | %s | %.2f |' % (
                PAGE, label, len([c for c in columns if '.' not in c]),
                seconds[label], len(statements),
                seconds[label] / seconds["columns before the helpdesk"]))
    old, new = seconds.values()
    figures = [(
            "%s rows of the request list (%s)" % (PAGE, args.size),
            "%.4f s, %s columns" % (
                new, len([c for c in new_columns if '.' not in c])),
            "%.4f s, the %s columns before the helpdesk" % (
                old, len(OLD_COLUMNS)),
            "%.2f" % (new / old))]
    for tab, tab_domain in tabs(database):
        counted, _ = timed(count(tab_domain), args.runs, 1)
        rows.append('| count of the tab *%s* | %.4f | | |' % (tab, counted))
    for row in rows:
        print(row, flush=True)
    generate.close_pool(name)

    write_section('request_list', '\n'.join([
                machine() + " Data set *%s*: %s open requests shown "
                "(first 1,000 ids)." % (args.size, f"{requests:,}"), "",
                "| what | seconds (median) | statements | ratio to "
                "the columns before |",
                "|---|---|---|---|",
                *rows, "",
                "Columns today: %s." % ', '.join(
                    '`%s`' % c for c in new_columns if '.' not in c)]))
    summary('request_list', figures)


if __name__ == '__main__':
    main()
