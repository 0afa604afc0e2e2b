import copy
from collections import defaultdict

from sql import Literal, Null, Union
from sql.aggregate import Sum

from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from .forfait import ID_SLICE, SQL_IN, to_timedelta
from .ledger import ZERO, format_hours, round_duration

BALANCE_FIELDS = [
    'forfait_hours', 'forfait_consumed', 'forfait_remaining',
    'forfait_pending', 'forfait_available', 'forfait_overdraft']
HOURS, CONSUMED, PENDING, OVERDRAFT = range(4)
# the figures of a past date: the time pending then is not known
PAST_FIELDS = [
    'forfait_hours', 'forfait_consumed', 'forfait_remaining',
    'forfait_overdraft']


def figure_labels():
    """Return the label of each figure in the context's language: the
    string of the party's field, the same on every surface"""
    Party = Pool().get('party.party')
    return {
        n: f['string'] for n, f in Party.fields_get(BALANCE_FIELDS).items()}


def client_figures(figures, past=False):
    """Return the figures a client reads, in order, as dictionaries of
    name, label, value (format_hours) and negative; the overdraft only when
    there is one"""
    labels = figure_labels()
    result = []
    for name in PAST_FIELDS if past else BALANCE_FIELDS:
        value = figures[name]
        if name == 'forfait_overdraft' and value <= ZERO:
            continue
        result.append({
                'name': name, 'label': labels[name],
                'value': format_hours(value), 'negative': value < ZERO})
    return result


def figures_as_of(date, past=False):
    "Return the heading that dates the figures"
    lang = Pool().get('ir.lang').get()
    return gettext(
        'webservice_forfait.msg_figures_as_of_past' if past
        else 'webservice_forfait.msg_figures_as_of',
        date=lang.strftime(date))


def figures_text(figures, date, past=False):
    "Return the dated figures as the lines of an e-mail"
    return '\n'.join([figures_as_of(date, past=past)] + [
            gettext('webservice_forfait.msg_figure_line',
                label=f['label'], value=f['value'])
            for f in client_figures(figures, past=past)])


class Balance(fields.Function):
    """A balance of the party, computed from the ids alone

    Function.get browses each slice of 2,000 records before calling the
    getter, and trytond's browse checks every id of the slice for each
    record: quadratic, most of the time of listing thousands of parties."""

    def __init__(self, field):
        super().__init__(field, 'get_forfait_balance')

    def __copy__(self):
        return Balance(copy.copy(self._field))

    def __deepcopy__(self, memo):
        return Balance(copy.deepcopy(self._field, memo))

    def get(self, ids, Model, name, values=None):
        names = [name] if isinstance(name, str) else name
        result = Model.forfait_balances(ids, names)
        return result[name] if isinstance(name, str) else result


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    forfait_credits = fields.One2Many(
        'forfait.credit', 'party', "Forfait Credits", readonly=True)
    forfait_hours = Balance(fields.TimeDelta(
            "Credited Hours", 'forfait_hours',
            help="The hours of the credits valid today, with the hours "
            "carried over into them."))
    forfait_consumed = Balance(fields.TimeDelta(
            "Consumed Hours", 'forfait_hours',
            help="The time deducted from the credits valid today "
            "and the overdraft not yet carried."))
    forfait_remaining = Balance(fields.TimeDelta(
            "Remaining Hours", 'forfait_hours',
            help="The credited hours less the consumed hours; "
            "negative when in overdraft."))
    forfait_pending = Balance(fields.TimeDelta(
            "Pending Hours", 'forfait_hours',
            help="The time billed so far on open requests, rounded as it "
            "will be deducted."))
    forfait_available = Balance(fields.TimeDelta(
            "Available Hours", 'forfait_hours',
            help="The remaining hours less the pending hours."))
    forfait_overdraft = Balance(fields.TimeDelta(
            "Overdraft", 'forfait_hours',
            help="The time done that no credit covered, "
            "to be taken from the next credit."))

    def forfait_figures(self, date=None):
        "Return the figures of the party as of date (today), by field name"
        balances = self.forfait_balances([self.id], BALANCE_FIELDS, date=date)
        return {n: balances[n][self.id] for n in BALANCE_FIELDS}

    @classmethod
    def get_forfait_balance(cls, parties, names):
        return cls.forfait_balances([p.id for p in parties], names)

    @classmethod
    def forfait_balances(cls, ids, names, date=None):
        """Compute the balances of the parties with one query per slice
        whatever the size of their history

        The one place where the figures are computed (doc/design.rst):
        as of today, or as of date from the credits valid on that day and
        the consumptions dated up to it (no pending time then)."""
        pool = Pool()
        Credit = pool.get('forfait.credit')
        Consumption = pool.get('forfait.consumption')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        Date = pool.get('ir.date')
        Config = pool.get('forfait.configuration')
        credit = Credit.__table__()
        consumption = Consumption.__table__()
        request = Request.__table__()
        line = Line.__table__()
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        company = transaction.context.get('company') or -1
        today = Date.today()
        past = date is not None and date != today
        if date is None:
            date = today
        rounding = Config.get_rounding()

        hours = defaultdict(lambda: ZERO)
        consumed = defaultdict(lambda: ZERO)
        pending = defaultdict(lambda: ZERO)
        overdraft = defaultdict(lambda: ZERO)
        # overdraft not yet carried nor invoiced, then the current credits
        uncovered = (
            (consumption.credit == Null) & (consumption.invoice_line == Null))
        current = ((credit.start_date <= date) & (credit.end_date >= date)
            & (credit.company == company))
        dated = Literal(True)
        if past:
            dated = consumption.date <= date
        else:
            current &= credit.state != 'expired'
        for sub_ids in grouped_slice(ids, ID_SLICE):
            sub_ids = list(sub_ids)
            # one round trip: the hours, the consumed time and the billable
            # time of each open request (rounded one by one below)
            cursor.execute(*Union(
                    credit.select(
                        Literal(HOURS), credit.party, Literal(0),
                        Sum(credit.hours),
                        where=SQL_IN(credit.party, sub_ids) & current,
                        group_by=credit.party),
                    # the consumptions of the current credits, then the
                    # overdraft: whatever the length of the history
                    credit.join(consumption,
                        condition=consumption.credit == credit.id
                        ).select(
                        Literal(CONSUMED), credit.party, Literal(0),
                        Sum(consumption.duration),
                        where=SQL_IN(credit.party, sub_ids) & current
                        & dated,
                        group_by=credit.party),
                    consumption.select(
                        Literal(OVERDRAFT), consumption.party, Literal(0),
                        Sum(consumption.duration),
                        where=SQL_IN(consumption.party, sub_ids)
                        & (consumption.company == company) & uncovered
                        & dated,
                        group_by=consumption.party),
                    request.join(line,
                        condition=line.forfait_request == request.id
                        ).select(
                        Literal(PENDING), request.party, request.id,
                        Sum(line.duration),
                        where=SQL_IN(request.party, sub_ids)
                        & (request.company == company)
                        & (request.state == 'open')
                        & line.billable & Literal(not past),
                        group_by=[request.party, request.id]),
                    all_=True))
            for kind, party_id, _, duration in cursor:
                duration = to_timedelta(duration)
                if kind == HOURS:
                    hours[party_id] = duration
                elif kind == CONSUMED:
                    consumed[party_id] += duration
                elif kind == OVERDRAFT:
                    overdraft[party_id] = duration
                else:
                    pending[party_id] += round_duration(duration, *rounding)

        result = {n: {} for n in names}
        for id_ in ids:
            used = consumed[id_] + overdraft[id_]
            remaining = hours[id_] - used
            values = {
                'forfait_hours': hours[id_],
                'forfait_consumed': used,
                'forfait_remaining': remaining,
                'forfait_pending': pending[id_],
                'forfait_available': remaining - pending[id_],
                'forfait_overdraft': overdraft[id_],
                }
            for name in names:
                result[name][id_] = values[name]
        return result
