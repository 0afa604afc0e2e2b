"""Benchmark: producing the update report through Tryton's report machinery.

Time to produce the PDF of a request with 10 and with 200 work lines through
Report.execute (records, context, Genshi, WeasyPrint), against WeasyPrint
alone rendering the same finished HTML: the ratio is our overhead.

Usage: python bench/report.py [--runs N] [--uri postgresql://...]
"""
import argparse
import datetime as dt
import sys

from common import (
    activate, machine, summary, timed, use_postgresql, write_section)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument(
        '--uri', default='postgresql://postgres@127.0.0.1:5432/')
    args = parser.parse_args()
    use_postgresql(args.uri)

    import weasyprint

    from trytond.modules.company.tests import (
        create_company, create_employee, set_company)
    from trytond.pool import Pool
    from trytond.tests.test_tryton import drop_db
    from trytond.transaction import Transaction

    db_name = activate()
    rows, figures = [], []
    with Transaction().start(db_name, 0) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        ActionReport = pool.get('ir.action.report')
        UpdateReport = pool.get('forfait.request.update_report', type='report')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            party = Party(name="Boulangerie Chez Lucette")
            party.save()
            today = pool.get('ir.date').today()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': dt.timedelta(hours=500), 'reason': "Bench",
                        'start_date': today,
                        'end_date': today + dt.timedelta(days=364)}])
            for count in [10, 200]:
                request, = Request.create([{
                            'party': party.id,
                            'subject': "Mise à jour de %s lignes" % count}])
                Request.open([request])
                Line.create([{
                            'forfait_request': request.id,
                            'employee': employee.id,
                            'duration': dt.timedelta(minutes=15),
                            'description': "Modification %s" % i}
                        for i in range(count)])
                Request.done([request])
                action, = ActionReport.search(
                    [('report_name', '=', UpdateReport.__name__)])
                html = UpdateReport.render(
                    action, UpdateReport.get_context(
                        [request], {}, {'action_id': action.id}))
                tryton, _ = timed(
                    lambda: UpdateReport.execute([request.id], {}),
                    args.runs)
                alone, _ = timed(
                    lambda: weasyprint.HTML(string=html).write_pdf(),
                    args.runs)
                rows.append('| %s | %.3f | %.3f | %.2f |' % (
                        count, tryton, alone, tryton / alone))
                figures.append((
                        "update report PDF, %s work lines" % count,
                        "%.3f s" % tryton, "%.3f s WeasyPrint alone" % alone,
                        "%.2f" % (tryton / alone)))
        transaction.rollback()
    drop_db()
    table = '\n'.join([
            machine() + " Median of %s runs." % args.runs,
            "",
            "| work lines | Tryton report (s) | WeasyPrint alone (s) "
            "| ratio |",
            "|---|---|---|---|",
            *rows])
    print(table)
    write_section('report', table)
    summary('report', figures)


if __name__ == '__main__':
    sys.exit(main())
