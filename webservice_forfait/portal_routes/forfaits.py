"""The forfaits: /forfaits with the credits and invoices,
/forfaits/<id>/statement.pdf, /invoices/<id>.pdf"""
from types import SimpleNamespace

from trytond.transaction import Transaction

from .common import download, logger, portal_route, render_report

INVOICE_STATES = ['posted', 'paid']


@portal_route('/forfaits')
def forfaits(portal):
    pool = portal.pool
    Credit = pool.get('forfait.credit')
    Invoice = pool.get('account.invoice')
    Subscription = pool.get('sale.subscription')
    party = portal.party
    credits = Credit.search(
        [('party', '=', party.id)],
        order=[('start_date', 'DESC'), ('id', 'DESC')])
    invoices = Invoice.search([
            ('party', '=', party.id),
            ('type', '=', 'out'),
            ('state', 'in', INVOICE_STATES),
            ], order=[('invoice_date', 'DESC'), ('id', 'DESC')], limit=50)
    subscriptions = Subscription.search([
            ('party', '=', party.id),
            ('state', 'in', ['quotation', 'running']),
            ], order=[('start_date', 'DESC'), ('id', 'DESC')])
    return portal.render('forfaits.html', title=portal.text('forfaits'),
        credits=credits, invoices=invoice_rows(portal, invoices),
        subscriptions=subscriptions)


def invoice_rows(portal, invoices):
    "The invoices with their due date and whether they are paid or late"
    pool = portal.pool
    MoveLine = pool.get('account.move.line')
    today = pool.get('ir.date').today()
    # read the lines to pay of all the invoices at once
    lines = {l.id: l for l in MoveLine.browse(
            [l.id for i in invoices for l in i.lines_to_pay])}
    rows = []
    for invoice in invoices:
        lines_ = [lines[l.id] for l in invoice.lines_to_pay]
        open_ = [l for l in lines_ if not l.reconciliation]
        dates = [
            l.maturity_date for l in (open_ or lines_) if l.maturity_date]
        due = min(dates) if dates else invoice.invoice_date
        paid = invoice.state == 'paid'
        rows.append({
                'invoice': invoice,
                'due': due,
                'status': 'paid' if paid else (
                    'late' if due and due < today else 'to_pay'),
                })
    return rows


@portal_route('/forfaits/<int:credit_id>/statement.pdf')
def credit_statement(portal, credit_id):
    Credit = portal.pool.get('forfait.credit')
    credits = Credit.search([
            ('id', '=', credit_id),
            ('party', '=', portal.party.id),
            ], limit=1)
    if not credits:
        return portal.not_found()
    return render_report(portal, 'forfait.credit.statement', credits)


@portal_route('/invoices/<int:invoice_id>.pdf')
def invoice_pdf(portal, invoice_id):
    "The client's posted invoice, printed by the ERP as a PDF"
    pool = portal.pool
    Invoice = pool.get('account.invoice')
    invoices = Invoice.search([
            ('id', '=', invoice_id),
            ('party', '=', portal.party.id),
            ('type', '=', 'out'),
            ('state', 'in', INVOICE_STATES),
            ], limit=1)
    if not invoices:
        return portal.not_found()
    Report = pool.get('account.invoice', type='report')
    with Transaction().set_context(language=portal.language):
        # the ERP's own invoice, as printed (and kept) for the staff
        ext, content, _, name = Report.execute([invoices[0].id], {})
    if ext != 'pdf':
        ext, content = Report.convert(SimpleNamespace(
                report_name=Report.__name__, template_extension=ext,
                extension='pdf'), content)
    if ext != 'pdf':
        logger.error("Invoice %s could not be converted to PDF", invoice_id)
        return portal.failed()
    return download(bytes(content), '%s.%s' % (name, ext), inline=True)
