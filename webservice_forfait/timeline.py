"A client's forfait history in one list: subscriptions, credits, ledger"
from sql import Cast, Literal, Union
from sql.operators import Concat

from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval

EVENTS = [
    ('subscription', "Subscription"),
    ('credit', "Credit"),
    ('expiry', "End of Credit"),
    ('consumption', "Consumption"),
    ('invoice', "Invoice"),
    ]


class Timeline(ModelSQL, ModelView):
    __name__ = 'forfait.timeline'
    __string__ = "Forfait Timeline"

    company = fields.Many2One('company.company', "Company")
    party = fields.Many2One(
        'party.party', "Party",
        context={'company': Eval('company', -1)}, depends={'company'})
    date = fields.Date("Date")
    event = fields.Selection(EVENTS, "Event", sort=False)
    duration = fields.TimeDelta("Hours", 'forfait_hours')
    document = fields.Reference("Document", selection='get_documents')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def get_documents(cls):
        IrModel = Pool().get('ir.model')
        return [(None, '')] + [(m, IrModel.get_name(m)) for m in [
                'sale.subscription', 'forfait.credit', 'forfait.request',
                'account.invoice']]

    @classmethod
    def table_query(cls):
        pool = Pool()
        subscription = pool.get('sale.subscription').__table__()
        credit = pool.get('forfait.credit').__table__()
        consumption = pool.get('forfait.consumption').__table__()
        invoice = pool.get('account.invoice').__table__()
        events = [name for name, _ in EVENTS]

        def select(table, event, date, duration, model, record_id):
            # ids stay unique across the union: id * 5 + event index
            return table.select(
                (table.id * len(events) + events.index(event)).as_('id'),
                table.company.as_('company'),
                table.party.as_('party'),
                date.as_('date'),
                Literal(event).as_('event'),
                duration.as_('duration'),
                Concat(model + ',', Cast(record_id, 'VARCHAR')).as_(
                    'document'))
        no_duration = Cast(Literal(None), cls.duration.sql_type().base)
        queries = [
            select(subscription, 'subscription', subscription.start_date,
                no_duration, 'sale.subscription', subscription.id),
            select(credit, 'credit', credit.start_date, credit.hours,
                'forfait.credit', credit.id),
            select(credit, 'expiry', credit.end_date, no_duration,
                'forfait.credit', credit.id),
            select(consumption, 'consumption', consumption.date,
                consumption.duration, 'forfait.request', consumption.request),
            ]
        invoice_query = select(
            invoice, 'invoice', invoice.invoice_date, no_duration,
            'account.invoice', invoice.id)
        invoice_query.where = (invoice.type == 'out') & (
            invoice.invoice_date != None)  # noqa: E711
        queries.append(invoice_query)
        return Union(*queries, all_=True)
