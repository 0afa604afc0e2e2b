"The 'invoice' overage policy: time no credit covers goes on an invoice"
from decimal import Decimal

from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .exceptions import PostingError

SECONDS_PER_HOUR = Decimal(3600)


class Consumption(metaclass=PoolMeta):
    __name__ = 'forfait.consumption'

    @classmethod
    def _line(cls, request, credit, duration, kind, date=None, reason=None):
        line = super()._line(
            request, credit, duration, kind, date=date, reason=reason)
        config = Pool().get('forfait.configuration')(1)
        if (kind == 'posting' and not credit
                and config.overage_policy == 'invoice'):
            line.invoice_line = line.invoice_overage()
        return line

    def invoice_overage(self):
        """Bill the time no credit covers at the hourly product, on the
        client's draft overage invoice of the month"""
        pool = Pool()
        InvoiceLine = pool.get('account.invoice.line')
        config = pool.get('forfait.configuration')(1)
        if not config.overage_product:
            raise PostingError(gettext(
                    'webservice_forfait.msg_overage_product_missing'))
        line = InvoiceLine(
            invoice=self.overage_invoice(), type='line',
            product=config.overage_product,
            quantity=float((
                    Decimal(int(self.duration.total_seconds()))
                    / SECONDS_PER_HOUR).quantize(Decimal('0.01'))))
        line.on_change_invoice()
        line.on_change_product()
        if getattr(line, 'unit_price', None) is None:
            line.unit_price = config.overage_product.list_price_used
        line.description = self.request.rec_name
        with without_check_access():
            line.save()
        return line

    def overage_invoice(self):
        "Return the draft overage invoice of the client's month"
        pool = Pool()
        Invoice = pool.get('account.invoice')
        lang = pool.get('ir.lang').get()
        description = gettext(
            'webservice_forfait.msg_overage_invoice',
            month=lang.strftime(self.date, '%m/%Y'))
        invoices = Invoice.search([
                ('type', '=', 'out'),
                ('state', '=', 'draft'),
                ('company', '=', self.company.id),
                ('party', '=', self.party.id),
                ('description', '=', description),
                ], limit=1)
        if invoices:
            return invoices[0]
        invoice = Invoice(
            company=self.company, type='out', party=self.party,
            invoice_address=self.party.address_get(type='invoice'),
            currency=self.company.currency,
            account=self.party.account_receivable_used,
            payment_term=self.party.customer_payment_term,
            description=description)
        invoice.set_journal()
        with without_check_access():
            invoice.save()
        return invoice
