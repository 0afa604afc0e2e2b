"""The forfaits: /forfaits with the credits and invoices,
/forfaits/<id>/statement.pdf"""
from .common import portal_route, render_report


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
            ('state', 'in', ['posted', 'paid']),
            ], order=[('invoice_date', 'DESC'), ('id', 'DESC')], limit=50)
    subscriptions = Subscription.search([
            ('party', '=', party.id),
            ('state', 'in', ['quotation', 'running']),
            ], order=[('start_date', 'DESC'), ('id', 'DESC')])
    return portal.render('forfaits.html', title=portal.text('forfaits'),
        credits=credits, invoices=invoices, subscriptions=subscriptions)


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
