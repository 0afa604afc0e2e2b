"""Buying hours: /subscribe"""
from trytond.exceptions import UserError
from trytond.transaction import Transaction

from .common import form_text, logger, portal_route


@portal_route('/subscribe', methods=('GET', 'POST'))
def subscribe(portal):
    pool = portal.pool
    Service = pool.get('sale.subscription.service')
    Subscription = pool.get('sale.subscription')
    offers = forfait_offers(portal)
    pending = Subscription.search([
            ('party', '=', portal.party.id),
            ('state', '=', 'quotation'),
            ], limit=1)
    if portal.request.method == 'POST':
        choice = form_text(portal, 'service')
        services = [o['service'] for o in offers
            if str(o['service'].id) == choice]
        if pending:
            portal.errors['form'] = portal.text('subscription_pending')
        elif not services:
            portal.errors['service'] = portal.text('service_invalid')
        else:
            service, = Service.browse(services)
            try:
                Subscription.create_from_portal(portal.user, service)
            except UserError:
                logger.exception("Subscription of %s", portal.party.id)
                Transaction().rollback()
                portal.errors['form'] = portal.text('subscription_failed')
            else:
                return portal.redirect(
                    'forfaits', notice='subscription_requested')
    return portal.render('subscribe.html', status=400 if portal.errors
        else 200, title=portal.text('subscribe'), offers=offers,
        pending=pending)


def forfait_offers(portal):
    "The forfaits on sale with their price, taxes and hours"
    pool = portal.pool
    Service = pool.get('sale.subscription.service')
    Tax = pool.get('account.tax')
    Date = pool.get('ir.date')
    services = Service.search([
            ('product.template.forfait', '=', True),
            ('product.template.salable', '=', True),
            ('product.active', '=', True),
            ], order=[('product.template.forfait_monthly_hours', 'ASC')])
    currency = portal.company.currency if portal.company else None
    offers = []
    for service in services:
        template = service.product.template
        price = service.product.list_price_used or template.list_price
        if price is None or currency is None:
            continue
        monthly = template.forfait_invoicing == 'monthly'
        if monthly:
            price = currency.round(price / 12)
        taxes = Tax.compute(
            Tax.browse(service.product.customer_taxes_used), price, 1,
            Date.today())
        tax = currency.round(sum((t['amount'] for t in taxes), 0))
        offers.append({
                'service': service,
                'name': template.name,
                'monthly_hours': template.forfait_monthly_hours,
                'yearly_hours': template.forfait_monthly_hours * 12,
                'monthly': monthly,
                'price': price, 'tax': tax, 'total': price + tax,
                'currency': currency,
                })
    return offers
