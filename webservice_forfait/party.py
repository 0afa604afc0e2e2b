from collections import defaultdict

from sql import Null
from sql.aggregate import Sum

from trytond.model import fields
from trytond.pool import Pool, PoolMeta
from trytond.tools import grouped_slice
from trytond.transaction import Transaction

from .forfait import ID_SLICE, SQL_IN, to_timedelta
from .ledger import ZERO, round_duration

BALANCE_FIELDS = [
    'forfait_hours', 'forfait_consumed', 'forfait_remaining',
    'forfait_pending', 'forfait_available']


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    forfait_credits = fields.One2Many(
        'forfait.credit', 'party', "Forfait Credits", readonly=True)
    forfait_hours = fields.Function(fields.TimeDelta(
            "Credited Hours", 'forfait_hours',
            help="The hours of the credits valid today."),
        'get_forfait_balance')
    forfait_consumed = fields.Function(fields.TimeDelta(
            "Consumed Hours", 'forfait_hours',
            help="The time consumed from the credits valid today "
            "and the overdraft not yet carried."),
        'get_forfait_balance')
    forfait_remaining = fields.Function(fields.TimeDelta(
            "Remaining Hours", 'forfait_hours',
            help="The credited hours less the consumed hours; "
            "negative when in overdraft."),
        'get_forfait_balance')
    forfait_pending = fields.Function(fields.TimeDelta(
            "Pending Hours", 'forfait_hours',
            help="The time billed so far on open requests."),
        'get_forfait_balance')
    forfait_available = fields.Function(fields.TimeDelta(
            "Available Hours", 'forfait_hours',
            help="The remaining hours less the pending hours."),
        'get_forfait_balance')

    @classmethod
    def get_forfait_balance(cls, parties, names):
        """Compute the balances of parties with three queries per slice
        whatever the size of their history"""
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
        config = Config(1)
        rounding = (
            config.rounding_unit, config.rounding_method,
            config.rounding_minimum)

        hours = defaultdict(lambda: ZERO)
        consumed = defaultdict(lambda: ZERO)
        pending = defaultdict(lambda: ZERO)
        # overdraft not yet carried nor invoiced, then the current credits
        uncovered = (
            (consumption.credit == Null) & (consumption.invoice_line == Null))
        current = ((credit.start_date <= today) & (credit.end_date >= today)
            & (credit.state != 'expired') & (credit.company == company))
        for sub_ids in grouped_slice([p.id for p in parties], ID_SLICE):
            sub_ids = list(sub_ids)
            cursor.execute(*credit.select(
                    credit.party, Sum(credit.hours),
                    where=SQL_IN(credit.party, sub_ids) & current,
                    group_by=credit.party))
            for party_id, duration in cursor:
                hours[party_id] = to_timedelta(duration)

            cursor.execute(*consumption.join(credit, 'LEFT',
                    condition=consumption.credit == credit.id
                    ).select(
                    consumption.party, Sum(consumption.duration),
                    where=SQL_IN(consumption.party, sub_ids)
                    & (consumption.company == company)
                    & (uncovered | current),
                    group_by=consumption.party))
            for party_id, duration in cursor:
                consumed[party_id] = to_timedelta(duration)

            cursor.execute(*request.join(line,
                    condition=line.forfait_request == request.id
                    ).select(
                    request.party, request.id, Sum(line.duration),
                    where=SQL_IN(request.party, sub_ids)
                    & (request.company == company)
                    & (request.state == 'open')
                    & line.billable,
                    group_by=[request.party, request.id]))
            for party_id, _, duration in cursor:
                pending[party_id] += round_duration(
                    to_timedelta(duration), *rounding)

        result = {n: {} for n in names}
        for party in parties:
            remaining = hours[party.id] - consumed[party.id]
            values = {
                'forfait_hours': hours[party.id],
                'forfait_consumed': consumed[party.id],
                'forfait_remaining': remaining,
                'forfait_pending': pending[party.id],
                'forfait_available': remaining - pending[party.id],
                }
            for name in names:
                result[name][party.id] = values[name]
        return result
