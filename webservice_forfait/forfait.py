import datetime
from collections import defaultdict
from decimal import Decimal
from itertools import groupby

from sql import Null
from sql.aggregate import Max, Min, Sum
from sql.functions import CurrentTimestamp, Extract

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, If, TimeDelta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access

from .exceptions import ForfaitValidationError, LedgerAccessError
from .ledger import ZERO, allocate, format_duration

# Ids are passed as one array (PostgreSQL) or one flat IN list (SQLite):
# neither hits a parameter or depth limit at this size.
ID_SLICE = 10_000
SQL_IN = fields.SQL_OPERATORS['in']


def to_timedelta(value):
    "Convert a SUM of durations (SQLite returns seconds as float)"
    if value is None:
        return ZERO
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(seconds=value)


class Credit(ModelSQL, ModelView):
    __name__ = 'forfait.credit'
    __string__ = "Forfait Credit"

    company = fields.Many2One(
        'company.company', "Company", required=True,
        states={'readonly': Bool(Eval('consumptions', [-1]))})
    party = fields.Many2One(
        'party.party', "Party", required=True,
        context={'company': Eval('company', -1)}, depends={'company'},
        states={'readonly': Bool(Eval('consumptions', [-1]))},
        help="The client whose update requests consume the hours.")
    start_date = fields.Date(
        "Start Date", required=True,
        states={'readonly': Bool(Eval('consumptions', [-1]))})
    end_date = fields.Date(
        "End Date", required=True,
        domain=[('end_date', '>=', Eval('start_date', None))],
        states={'readonly': Bool(Eval('consumptions', [-1]))},
        help="The last day on which the hours can be used.")
    hours = fields.TimeDelta(
        "Credited Hours", 'forfait_hours', required=True,
        domain=[('hours', '>', TimeDelta())],
        states={'readonly': Bool(Eval('consumptions', [-1]))},
        help="The time credited for the whole period.")
    consumed = fields.Function(
        fields.TimeDelta(
            "Consumed Hours", 'forfait_hours',
            help="The time deducted from the credit."),
        'get_balance')
    remaining = fields.Function(
        fields.TimeDelta(
            "Remaining Hours", 'forfait_hours',
            help="The credited hours less the consumed hours."),
        'get_balance')
    carried_over = fields.TimeDelta(
        "Carried Over", 'forfait_hours', readonly=True,
        help="The hours of the previous year added to this credit.")
    carried_from = fields.Many2One(
        'forfait.credit', "Carried From", readonly=True,
        states={'invisible': ~Eval('carried_from')})
    expired_hours = fields.Function(
        fields.TimeDelta(
            "Expired Hours", 'forfait_hours',
            help="The hours left when the credit ended, which are lost."),
        'get_expired_hours')
    origin = fields.Reference(
        "Origin", selection='get_origins', readonly=True,
        help="The subscription line that yielded the credit.")
    reason = fields.Char(
        "Reason",
        states={
            'required': ~Eval('origin'),
            'invisible': Bool(Eval('origin')),
            'readonly': Bool(Eval('consumptions', [-1])),
            },
        help="Why the credit was granted by hand.")
    state = fields.Selection([
            ('open', "Open"),
            ('exhausted', "Exhausted"),
            ('expired', "Expired"),
            ], "State", readonly=True, required=True, sort=False)
    state_string = state.translated('state')
    consumptions = fields.One2Many(
        'forfait.consumption', 'credit', "Consumptions", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('origin_start_unique', Unique(t, t.origin, t.start_date),
                'webservice_forfait.msg_credit_origin_start_unique'),
            ]
        cls._sql_indexes.update({
                Index(t,
                    (t.party, Index.Range()),
                    (t.end_date, Index.Range())),
                })
        cls._order = [('end_date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_state(cls):
        return 'open'

    @classmethod
    def default_carried_over(cls):
        return ZERO

    @classmethod
    def _get_origins(cls):
        return ['sale.subscription.line', 'account.invoice.line']

    @classmethod
    def get_origins(cls):
        IrModel = Pool().get('ir.model')
        return [(None, '')] + [
            (m, IrModel.get_name(m)) for m in cls._get_origins()]

    def get_rec_name(self, name):
        lang = Pool().get('ir.lang').get()
        return '%s %s (%s - %s)' % (
            self.party.rec_name, format_duration(self.hours),
            lang.strftime(self.start_date), lang.strftime(self.end_date))

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('party.rec_name',) + tuple(clause[1:])]

    @classmethod
    def consumed_by_credit(cls, credit_ids):
        "Return the consumed time of each credit with one query per slice"
        Consumption = Pool().get('forfait.consumption')
        consumption = Consumption.__table__()
        cursor = Transaction().connection.cursor()
        consumed = defaultdict(lambda: ZERO)
        for sub_ids in grouped_slice(credit_ids, ID_SLICE):
            cursor.execute(*consumption.select(
                    consumption.credit, Sum(consumption.duration),
                    where=SQL_IN(consumption.credit, sub_ids),
                    group_by=consumption.credit))
            for credit_id, duration in cursor:
                consumed[credit_id] = to_timedelta(duration)
        return consumed

    @classmethod
    def get_balance(cls, credits, names):
        consumed = cls.consumed_by_credit([c.id for c in credits])
        result = {'consumed': {}, 'remaining': {}}
        for credit in credits:
            result['consumed'][credit.id] = consumed[credit.id]
            result['remaining'][credit.id] = (
                credit.hours - consumed[credit.id])
        return {n: result[n] for n in names}

    @classmethod
    def validate_fields(cls, credits, field_names):
        super().validate_fields(credits, field_names)
        for credit in credits:
            if credit.end_date < credit.start_date:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_credit_dates',
                        credit=credit.rec_name))
            if credit.hours <= ZERO:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_credit_hours_positive',
                        credit=credit.rec_name))

    @classmethod
    def check_modification(cls, mode, credits, values=None, external=False):
        super().check_modification(
            mode, credits, values=values, external=external)
        locked = {'company', 'party', 'start_date', 'end_date', 'hours',
            'origin'}
        if mode == 'delete' or (
                mode == 'write' and locked & set(values or {})):
            used = cls.consumed_by_credit([c.id for c in credits])
            for credit in credits:
                if credit.id in used:
                    raise LedgerAccessError(gettext(
                            'webservice_forfait.msg_credit_used',
                            credit=credit.rec_name))

    @classmethod
    def create(cls, vlist):
        credits = super().create(vlist)
        pool = Pool()
        Request = pool.get('forfait.request')
        cls.absorb_overdrafts(credits)
        Request.release_waiting({c.party for c in credits})
        return credits

    @classmethod
    def absorb_overdrafts(cls, credits):
        """Carry the parties' open overdrafts onto the new credits

        The overdraft is read once for all the credits and shared between
        them in memory, oldest end first, so credits created together carry
        it once. Its lines are locked and touched as postings do with the
        credits: a concurrent transaction creating a credit for the same
        client waits and then sees the carries, instead of carrying the
        overdraft again."""
        Consumption = Pool().get('forfait.consumption')
        consumption = Consumption.__table__()
        cursor = Transaction().connection.cursor()
        remaining = {c.id: c.hours for c in credits}
        transfers = []
        key = lambda c: (c.party.id, c.company.id)  # noqa: E731
        for (party_id, company_id), group in groupby(
                sorted(credits, key=key), key=key):
            uncovered = ((consumption.party == party_id)
                & (consumption.company == company_id)
                & (consumption.credit == Null)
                & (consumption.invoice_line == Null))
            cursor.execute(*consumption.select(
                    consumption.id, where=uncovered))
            ids = [i for i, in cursor]
            if not ids:
                continue
            Consumption.lock(ids)
            cursor.execute(*consumption.select(
                    consumption.request, Sum(consumption.duration),
                    where=uncovered,
                    group_by=consumption.request,
                    order_by=[Min(consumption.id)]))
            overdrafts = [
                [request_id, to_timedelta(duration)]
                for request_id, duration in cursor]
            for credit in sorted(group, key=lambda c: (c.end_date, c.id)):
                for overdraft in overdrafts:
                    request_id, duration = overdraft
                    part = min(duration, remaining[credit.id])
                    if part <= ZERO:
                        continue
                    remaining[credit.id] -= part
                    overdraft[1] -= part
                    transfers.extend(
                        Consumption.carry(credit, request_id, part))
            Consumption.touch(ids)
        with without_check_access():
            Consumption.save(transfers)
        cls.update_state(credits)
        cls.notify_thresholds(credits)

    @classmethod
    def expire(cls, date=None):
        "Cron: expire the credits whose last day is over"
        pool = Pool()
        Company = pool.get('company.company')
        for company in Company.search([]):
            with Transaction().set_context(company=company.id):
                today = date or pool.get('ir.date').today()
            cls.update_state(cls.search([
                        ('company', '=', company.id),
                        ('end_date', '<', today),
                        ('state', '!=', 'expired'),
                        ]), date=today)

    def get_expired_hours(self, name):
        if self.state != 'expired':
            return ZERO
        carried = sum(
            (c.carried_over for c in self.search(
                    [('carried_from', '=', self.id)])), ZERO)
        return max(self.remaining - carried, ZERO)

    @classmethod
    def update_state(cls, credits, date=None):
        "Set each credit's state from its balance and dates"
        today = date or Pool().get('ir.date').today()
        consumed = cls.consumed_by_credit([c.id for c in credits])
        by_state = defaultdict(list)
        for credit in credits:
            if credit.end_date < today:
                state = 'expired'
            elif consumed[credit.id] >= credit.hours:
                state = 'exhausted'
            else:
                state = 'open'
            if credit.state != state:
                by_state[state].append(credit)
        to_write = []
        for state, records in by_state.items():
            to_write.extend((records, {'state': state}))
        if to_write:
            with without_check_access():
                cls.write(*to_write)

    @classmethod
    def touch(cls, credits):
        """Update the rows of credits consumed by this transaction

        PostgreSQL grants the lock of a posting as soon as the previous one
        has committed, but its snapshot may be older: the update makes the
        lock fail with a serialization error instead, and the posting is
        retried with a snapshot that sees the previous consumptions."""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        for sub_ids in grouped_slice([c.id for c in credits], ID_SLICE):
            cursor.execute(*table.update(
                    [table.write_date], [CurrentTimestamp()],
                    where=SQL_IN(table.id, list(sub_ids))))

    @classmethod
    def usable(cls, parties, company, date):
        "Return the credits to consume at date, in consumption order"
        return cls.search([
                ('party', 'in', [p.id for p in parties]),
                ('company', '=', company.id),
                ('state', '=', 'open'),
                ('start_date', '<=', date),
                ('end_date', '>=', date),
                ], order=[
                ('end_date', 'ASC'), ('start_date', 'ASC'), ('id', 'ASC')])


class Consumption(ModelSQL, ModelView):
    __name__ = 'forfait.consumption'
    __string__ = "Forfait Consumption"

    company = fields.Many2One(
        'company.company', "Company", required=True, readonly=True)
    party = fields.Many2One(
        'party.party', "Party", required=True, readonly=True,
        context={'company': Eval('company', -1)}, depends={'company'})
    request = fields.Many2One(
        'forfait.request', "Request", required=True, readonly=True,
        ondelete='RESTRICT')
    credit = fields.Many2One(
        'forfait.credit', "Credit", readonly=True, ondelete='RESTRICT',
        help="Empty for time that no credit covered (overdraft).")
    date = fields.Date("Date", required=True, readonly=True)
    duration = fields.TimeDelta(
        "Duration", 'forfait_hours', required=True, readonly=True)
    kind = fields.Selection([
            ('posting', "Posting"),
            ('reversal', "Reversal"),
            ('carry', "Carry"),
            ], "Kind", required=True, readonly=True, sort=False)
    kind_string = kind.translated('kind')
    invoice_line = fields.Many2One(
        'account.invoice.line', "Invoice Line", readonly=True,
        ondelete='RESTRICT',
        states={'invisible': ~Eval('invoice_line')},
        help="Where the time no credit covered is billed, under the "
        "'invoice' overage policy; such time is not carried.")
    reason = fields.Char(
        "Reason", readonly=True,
        states={'invisible': ~Eval('reason')})
    overdraft = fields.Function(
        fields.Boolean("Overdraft"), 'get_overdraft',
        searcher='search_overdraft')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.credit, Index.Range())),
                # a party's consumptions: statements, monthly graph
                Index(t,
                    (t.party, Index.Range()),
                    (t.company, Index.Range())),
                Index(t,
                    (t.party, Index.Range()),
                    (t.company, Index.Range()),
                    where=t.credit == Null),
                Index(t, (t.request, Index.Range())),
                Index(t, (t.date, Index.Range())),
                })
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    def get_rec_name(self, name):
        return '%s %s' % (
            self.request.rec_name, format_duration(self.duration))

    @classmethod
    def search_rec_name(cls, name, clause):
        return [('request.rec_name',) + tuple(clause[1:])]

    def get_overdraft(self, name):
        return not self.credit

    @classmethod
    def search_overdraft(cls, name, clause):
        _, operator, value = clause
        if operator == '!=':
            value = not value
        return [('credit', '=' if value else '!=', None)]

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('/tree', 'visual',
                If(~Eval('credit'), 'danger',
                    If(Eval('kind') != 'posting', 'muted', ''))),
            ]

    @classmethod
    def check_modification(
            cls, mode, consumptions, values=None, external=False):
        super().check_modification(
            mode, consumptions, values=values, external=external)
        if mode in {'write', 'delete'}:
            raise LedgerAccessError(gettext(
                    'webservice_forfait.msg_consumption_immutable',
                    consumption=consumptions[0].rec_name))
        if mode == 'create' and external:
            raise LedgerAccessError(gettext(
                    'webservice_forfait.msg_consumption_create'))

    @classmethod
    def _line(cls, request, credit, duration, kind, date=None, reason=None):
        return cls(
            company=request.company, party=request.party, request=request,
            credit=credit, date=date or Pool().get('ir.date').today(),
            duration=duration, kind=kind, reason=reason)

    @classmethod
    def post(cls, requests):
        """Post the billed time of requests against their parties' credits

        The credits are locked first, so concurrent postings wait and then
        see each other's consumptions.
        """
        pool = Pool()
        Credit = pool.get('forfait.credit')
        Date = pool.get('ir.date')
        consumptions, credits = [], []
        key = lambda r: r.company.id  # noqa: E731
        for _, company_requests in groupby(
                sorted(requests, key=key), key=key):
            company_requests = list(company_requests)
            company = company_requests[0].company
            with Transaction().set_context(company=company.id):
                today = Date.today()
            company_credits = Credit.usable(
                {r.party for r in company_requests}, company, today)
            Credit.lock(company_credits)
            consumed = Credit.consumed_by_credit(
                [c.id for c in company_credits])
            remaining = {c: c.hours - consumed[c.id] for c in company_credits}
            for request in sorted(company_requests, key=lambda r: r.id):
                balances = [
                    (c, remaining[c]) for c in company_credits
                    if c.party == request.party]
                for credit, part in allocate(request.billed, balances):
                    consumptions.append(cls._line(
                            request, credit, part, 'posting', date=today))
                    if credit:
                        remaining[credit] -= part
            credits.extend(company_credits)
        with without_check_access():
            cls.save(consumptions)
        Credit.touch(credits)
        Credit.update_state(credits)
        Credit.notify_thresholds(credits)
        return consumptions

    @classmethod
    def reverse(cls, requests, reason):
        "Cancel the net posted time of requests, credit by credit"
        pool = Pool()
        Credit = pool.get('forfait.credit')
        reversals = []
        for request in requests:
            net = defaultdict(lambda: ZERO)
            for consumption in request.consumptions:
                net[consumption.credit] += consumption.duration
            for credit, duration in net.items():
                if duration:
                    reversals.append(cls._line(
                            request, credit, -duration, 'reversal',
                            reason=reason))
        with without_check_access():
            cls.save(reversals)
        Credit.update_state(list({c.credit for c in reversals if c.credit}))
        return reversals

    @classmethod
    def touch(cls, ids):
        "Update the rows of the overdraft carried by this transaction"
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        for sub_ids in grouped_slice(ids, ID_SLICE):
            cursor.execute(*table.update(
                    [table.write_date], [CurrentTimestamp()],
                    where=SQL_IN(table.id, list(sub_ids))))

    @classmethod
    def carry(cls, credit, request_id, duration):
        "Return the pair of lines moving an overdraft onto credit"
        request = Pool().get('forfait.request')(request_id)
        reason = gettext('webservice_forfait.msg_carry_reason')
        return [
            cls._line(request, None, -duration, 'carry', reason=reason),
            cls._line(request, credit, duration, 'carry', reason=reason),
            ]


class ConsumptionMonthly(ModelSQL, ModelView):
    __name__ = 'forfait.consumption.monthly'
    __string__ = "Forfait Consumption per Month"

    company = fields.Many2One('company.company', "Company")
    party = fields.Many2One(
        'party.party', "Party",
        context={'company': Eval('company', -1)}, depends={'company'})
    year = fields.Integer("Year")
    month = fields.Many2One('ir.calendar.month', "Month")
    period = fields.Function(fields.Char("Period"), 'get_period')
    duration = fields.TimeDelta("Duration", 'forfait_hours')
    hours = fields.Function(
        fields.Numeric("Hours", digits=(16, 2)), 'get_hours')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('year', 'ASC'), ('month.index', 'ASC'), ('party', 'ASC'),
            ('id', 'ASC')]

    @classmethod
    def table_query(cls):
        pool = Pool()
        Consumption = pool.get('forfait.consumption')
        Month = pool.get('ir.calendar.month')
        consumption = Consumption.__table__()
        month = Month.__table__()
        year = Extract('YEAR', consumption.date)
        return consumption.join(month,
            condition=Extract('MONTH', consumption.date) == month.index
            ).select(
            Max(consumption.id).as_('id'),
            consumption.company,
            consumption.party,
            year.as_('year'),
            month.id.as_('month'),
            Sum(consumption.duration).as_('duration'),
            group_by=[consumption.company, consumption.party, year, month.id])

    def get_period(self, name):
        return '%04d-%02d' % (self.year, self.month.index)

    def get_hours(self, name):
        "The duration in hours, from its whole seconds: no float on the way"
        seconds = (self.duration or ZERO) // datetime.timedelta(seconds=1)
        return (Decimal(seconds) / 3600).quantize(Decimal('0.01'))
