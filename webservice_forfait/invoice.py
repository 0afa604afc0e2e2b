"""The 'invoice' overage policy: time no credit covers goes on an invoice;
extra-hours packs: a draft invoice for the agency and the hours at once"""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .exceptions import PostingError
from .ledger import year_end

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


class Invoice(metaclass=PoolMeta):
    __name__ = 'account.invoice'

    @classmethod
    def sell_forfait_pack(cls, party, product, quantity=1, description=None):
        """Put quantity packs of product on a new draft invoice of party and
        credit their hours at once, for 12 months from today; the credit
        takes the party's overdraft first. Return the credit."""
        pool = Pool()
        Company = pool.get('company.company')
        Credit = pool.get('forfait.credit')
        Date = pool.get('ir.date')
        InvoiceLine = pool.get('account.invoice.line')
        template = product.template
        if not template.forfait_pack or not template.forfait_pack_hours:
            raise PostingError(gettext(
                    'webservice_forfait.msg_forfait_pack_service',
                    product=product.rec_name))
        Address = pool.get('party.address')
        company = Company(Transaction().context['company'])
        address = party.address_get(type='invoice')
        if not address:
            # as the client's forms do, a party has at least one address
            address = Address(party=party)
            with without_check_access():
                address.save()
        invoice = cls(
            company=company, type='out', party=party,
            invoice_address=address,
            currency=company.currency,
            account=party.account_receivable_used,
            payment_term=party.customer_payment_term,
            description=description)
        invoice.set_journal()
        line = InvoiceLine(
            invoice=invoice, type='line', product=product,
            quantity=quantity)
        line.on_change_invoice()
        line.on_change_product()
        if getattr(line, 'unit_price', None) is None:
            line.unit_price = product.list_price_used
        invoice.lines = [line]
        with without_check_access():
            invoice.save()
            cls.update_taxes([invoice])
        line, = invoice.lines
        today = Date.today()
        credit = Credit(
            company=company, party=party, start_date=today,
            end_date=year_end(today),
            hours=template.forfait_pack_hours * int(quantity),
            origin=line)
        with without_check_access():
            credit.save()
        return credit
