"""Buying hours: /subscribe (forfaits, extra-hours packs and the renewal),
/packs (ordering a pack)"""
import datetime

from trytond.exceptions import UserError
from trytond.transaction import Transaction

from ..ledger import year_end
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
    return render_subscribe(portal, offers=offers, pending=pending)


def render_subscribe(portal, **values):
    pool = portal.pool
    Subscription = pool.get('sale.subscription')
    if 'offers' not in values:
        values['offers'] = forfait_offers(portal)
    if 'pending' not in values:
        values['pending'] = Subscription.search([
                ('party', '=', portal.party.id),
                ('state', '=', 'quotation'),
                ], limit=1)
    return portal.render('subscribe.html', status=400 if portal.errors
        else 200, title=portal.text('subscribe'), packs=pack_offers(portal),
        renewals=renewals(portal), **values)


@portal_route('/packs', methods=('POST',))
def order_pack(portal):
    "Order an extra-hours pack: invoiced as a draft, credited at once"
    pool = portal.pool
    Invoice = pool.get('account.invoice')
    choice = form_text(portal, 'product')
    products = [o['product'] for o in pack_offers(portal)
        if str(o['product'].id) == choice]
    if not products:
        portal.errors['product'] = portal.text('pack_invalid')
        return render_subscribe(portal)
    product, = products
    try:
        credit = Invoice.sell_forfait_pack(
            portal.party, product, description=portal.text(
                'pack_description', email=portal.user.email))
        portal.user.notify_pack_order(credit)
    except UserError:
        logger.exception("Pack for %s", portal.party.id)
        Transaction().rollback()
        portal.errors['form'] = portal.text('pack_failed')
        return render_subscribe(portal)
    return portal.redirect('', notice='pack_ordered')


def pack_offers(portal):
    "The extra-hours packs on sale with their price, taxes and hours"
    pool = portal.pool
    Product = pool.get('product.product')
    Tax = pool.get('account.tax')
    Date = pool.get('ir.date')
    products = Product.search([
            ('template.forfait_pack', '=', True),
            ('template.salable', '=', True),
            ], order=[('template.forfait_pack_hours', 'ASC'), ('id', 'ASC')])
    currency = portal.company.currency if portal.company else None
    today = Date.today()
    offers = []
    for product in products:
        price = product.list_price_used
        if price is None or currency is None:
            continue
        taxes = Tax.compute(
            Tax.browse(product.customer_taxes_used), price, 1, today)
        tax = currency.round(sum((t['amount'] for t in taxes), 0))
        offers.append({
                'product': product,
                'hours': product.template.forfait_pack_hours,
                'price': price, 'tax': tax, 'total': price + tax,
                'currency': currency,
                'valid_until': year_end(today),
                })
    return offers


def renewals(portal):
    "The next yearly credit of each running forfait of the client"
    pool = portal.pool
    Line = pool.get('sale.subscription.line')
    Date = pool.get('ir.date')
    today = Date.today()
    lines = Line.search([
            ('subscription.party', '=', portal.party.id),
            ('subscription.state', '=', 'running'),
            ('service.product.template.forfait', '=', True),
            ], order=[('start_date', 'ASC'), ('id', 'ASC')])
    result = []
    for line in lines:
        start = line.forfait_year_start(today)
        if not start:
            continue
        if start <= today:
            start = year_end(start) + datetime.timedelta(days=1)
        end = line.end_date or line.subscription.end_date
        if end and start > end:
            continue
        template = line.service.product.template
        result.append({
                'forfait': line.service.product.rec_name,
                'date': start,
                'hours': template.forfait_yearly_hours * int(line.quantity),
                'change_before': start - datetime.timedelta(days=1),
                })
    return result


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
