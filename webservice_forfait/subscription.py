import datetime

from sql import Literal, operators
from sql.conditionals import Coalesce
from sql.functions import Function
from sql.operators import Concat

from trytond import backend
from trytond.i18n import gettext
from trytond.model import ModelView, Workflow, fields
from trytond.modules.product import round_price
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .exceptions import ForfaitValidationError
from .ledger import ZERO, year_end


class SQLiteDate(Function):
    "SQLite's DATE(date, modifier): a date moved by a modifier"
    __slots__ = ()
    _function = 'DATE'


def contract_years(start, until):
    "Yield the start dates of the contract years begun by until"
    while start <= until:
        yield start
        start = year_end(start) + datetime.timedelta(days=1)


class Subscription(metaclass=PoolMeta):
    __name__ = 'sale.subscription'

    @classmethod
    @ModelView.button
    @Workflow.transition('running')
    def run(cls, subscriptions):
        cls.skip_years_before_credit(subscriptions)
        super().run(subscriptions)
        cls.create_forfait_credits(subscriptions)

    @classmethod
    def skip_years_before_credit(cls, subscriptions, date=None):
        """Start consuming and invoicing a forfait line entered after its
        first anniversary with the contract year that is credited: the
        years before are the agency's past, neither credited nor invoiced
        again"""
        pool = Pool()
        Date = pool.get('ir.date')
        for subscription in subscriptions:
            with Transaction().set_context(company=subscription.company.id):
                today = date or Date.today()
            starts = []
            for line in subscription.lines:
                if (not line.is_forfait or line.next_consumption_date
                        or line.consumed_until or not line.start_date):
                    continue
                start = line.forfait_year_start(today)
                if start and start > line.start_date:
                    line.next_consumption_date = start
                    line.consumed_until = start - datetime.timedelta(days=1)
                    starts.append(start)
            # the first invoice is dated as its year, when the forfaits are
            # all the subscription sells
            if (starts and not subscription.next_invoice_date
                    and len(starts) == len(subscription.lines)):
                subscription.next_invoice_date = min(starts)

    @classmethod
    def create_forfait_credits(cls, subscriptions, date=None):
        """Credit the contract year of each forfait line that is running at
        date (or that starts later), once"""
        pool = Pool()
        Credit = pool.get('forfait.credit')
        Date = pool.get('ir.date')
        lines = [l for s in subscriptions for l in s.lines if l.is_forfait]
        existing = {
            (c.origin, c.start_date) for c in Credit.search([
                    ('origin', 'in', [str(l) for l in lines]),
                    ])}
        credits = []
        for line in lines:
            with Transaction().set_context(
                    company=line.subscription.company.id):
                today = date or Date.today()
            start = line.forfait_year_start(today)
            if start and (line, start) not in existing:
                credits.append(line.get_forfait_credit(start))
        with without_check_access():
            Credit.save(credits)
        return credits

    @classmethod
    def renew_forfait_credits(cls, date=None):
        "Cron: credit the new contract year of running forfait lines"
        subscriptions = cls.search([
                ('state', '=', 'running'),
                ('lines.service.product.template.forfait', '=', True),
                ])
        return cls.create_forfait_credits(subscriptions, date=date)

    @classmethod
    def validate_fields(cls, subscriptions, field_names):
        super().validate_fields(subscriptions, field_names)
        if field_names and not (field_names & {'end_date', 'start_date'}):
            return
        for subscription in subscriptions:
            for line in subscription.lines:
                line.check_commitment(subscription.end_date)


class SubscriptionLine(metaclass=PoolMeta):
    __name__ = 'sale.subscription.line'

    @property
    def is_forfait(self):
        return bool(self.service and self.service.product.template.forfait)

    @fields.depends('service')
    def on_change_service(self):
        "A forfait invoiced monthly is consumed, at a twelfth, every month"
        pool = Pool()
        ModelData = pool.get('ir.model.data')
        RuleSet = pool.get('sale.subscription.recurrence.rule.set')
        super().on_change_service()
        if (self.is_forfait
                and self.service.product.template.forfait_invoicing
                == 'monthly'):
            self.consumption_recurrence = RuleSet(ModelData.get_id(
                    'webservice_forfait', 'recurrence_monthly'))
            if self.unit_price is not None:
                self.unit_price = round_price(self.unit_price / 12)

    def forfait_year_start(self, date):
        """Return the start of the contract year running at date, or the
        first one when the line starts later; None when the line is over"""
        end = self.end_date or self.subscription.end_date
        years = [
            y for y in contract_years(
                self.start_date, max(date, self.start_date))
            if not end or y <= end]
        if years and year_end(years[-1]) >= date:
            return years[-1]

    def get_forfait_credit(self, start_date):
        """Return the credit of the contract year starting on start_date,
        with the hours carried over from the year before"""
        pool = Pool()
        Credit = pool.get('forfait.credit')
        config = pool.get('forfait.configuration')(1)
        template = self.service.product.template
        credit = Credit(
            company=self.subscription.company,
            party=self.subscription.party,
            start_date=start_date,
            end_date=year_end(start_date),
            hours=template.forfait_yearly_hours * int(self.quantity),
            carried_over=ZERO,
            origin=self)
        previous = Credit.search([
                ('origin', '=', str(self)),
                ('end_date', '=', start_date - datetime.timedelta(days=1)),
                ], limit=1)
        if config.carry_over_max and previous:
            credit.carried_from, = previous
            credit.carried_over = min(
                max(credit.carried_from.remaining, ZERO),
                config.carry_over_max)
            credit.hours += credit.carried_over
        return credit

    def check_commitment(self, end_date=None):
        "Refuse an end before the 12 months a forfait commits to"
        end_date = self.end_date or end_date
        if self.is_forfait and end_date and self.start_date:
            minimum = year_end(self.start_date)
            if end_date < minimum:
                lang = Pool().get('ir.lang').get()
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_forfait_commitment',
                        subscription=self.subscription.rec_name,
                        date=lang.strftime(minimum)))

    @classmethod
    def domain_next_consumption_date_delayed(cls, domain, tables):
        # sale_subscription adds the delay to the date in SQL, which SQLite
        # computes as a number (the year): every line would be due, and a
        # yearly forfait invoiced again at each run of the cron.
        if backend.name != 'sqlite':
            return super().domain_next_consumption_date_delayed(
                domain, tables)
        field = cls.next_consumption_date_delayed._field
        table, _ = tables[None]
        name, operator, value = domain
        column = SQLiteDate(table.next_consumption_date, Concat(
                Coalesce(table.consumption_delay, 0), ' seconds'))
        expression = fields.SQL_OPERATORS[operator](
            column, field._domain_value(operator, value))
        if isinstance(expression, operators.In) and not expression.right:
            expression = Literal(False)
        elif isinstance(expression, operators.NotIn) and not expression.right:
            expression = Literal(True)
        return field._domain_add_null(column, operator, value, expression)

    @classmethod
    def validate_fields(cls, lines, field_names):
        super().validate_fields(lines, field_names)
        for line in lines:
            if line.is_forfait and (
                    not line.quantity or line.quantity <= 0
                    or line.quantity != int(line.quantity)):
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_forfait_line_quantity',
                        line=line.rec_name))
            line.check_commitment()
