"""Priorities and service levels: the deadlines of a request, counted in the
agency's opening hours, paused while the request waits"""
import datetime
import json
from functools import lru_cache

import holidays
from sql.conditionals import Case

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, Index, ModelSQL, ModelView, Unique, fields,
    sequence_ordered)
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, If, TimeDelta
from trytond.tools import timezone as tz
from trytond.transaction import Transaction, without_check_access

from .exceptions import ForfaitValidationError
from .ledger import ZERO

PRIORITIES = [
    ('low', "Low"),
    ('normal', "Normal"),
    ('high', "High"),
    ('urgent', "Urgent"),
    ]
WEEKDAYS = [
    ('0', "Monday"),
    ('1', "Tuesday"),
    ('2', "Wednesday"),
    ('3', "Thursday"),
    ('4', "Friday"),
    ('5', "Saturday"),
    ('6', "Sunday"),
    ]
# at most this many days are searched for opening hours
HORIZON = 3 * 366
UTC = datetime.timezone.utc


def now():
    "Return the current time as stored by trytond: naive UTC, to the second"
    return datetime.datetime.now().replace(microsecond=0)


class OpeningHours:
    """The agency's opening hours: a week of (start, end) times per weekday,
    the closed days and the time zone they are read in"""

    def __init__(self, week, closed, timezone=None):
        self.week = {
            day: sorted(ranges) for day, ranges in week.items() if ranges}
        self.closed = closed
        self.timezone = timezone or UTC

    def intervals(self, day):
        "Return the opening intervals of day as aware datetimes"
        if day in self.closed:
            return []
        return [
            (datetime.datetime.combine(day, start, tzinfo=self.timezone),
                datetime.datetime.combine(day, end, tzinfo=self.timezone))
            for start, end in self.week.get(day.weekday(), [])]

    def _local(self, timestamp):
        return timestamp.replace(tzinfo=UTC).astimezone(self.timezone)

    @staticmethod
    def _utc(timestamp):
        return timestamp.astimezone(UTC).replace(tzinfo=None)

    def add(self, start, duration):
        """Return the naive UTC timestamp duration of opening hours after
        start (naive UTC), or None without opening hours"""
        if not self.week:
            return None
        local = self._local(start)
        day = local.date()
        remaining = max(duration, ZERO)
        for _ in range(HORIZON):
            for begin, end in self.intervals(day):
                if end <= local:
                    continue
                begin = max(begin, local)
                if begin + remaining <= end:
                    return self._utc(begin + remaining)
                remaining -= end - begin
            day += datetime.timedelta(days=1)
        return None

    def elapsed(self, start, end):
        "Return the opening hours between the naive UTC start and end"
        if not self.week or end <= start:
            return ZERO
        local_start, local_end = self._local(start), self._local(end)
        total = ZERO
        day = local_start.date()
        while day <= local_end.date():
            for begin, finish in self.intervals(day):
                begin, finish = max(begin, local_start), min(finish, local_end)
                if finish > begin:
                    total += finish - begin
            day += datetime.timedelta(days=1)
        return total


@lru_cache(maxsize=32)
def public_holidays(country, subdivision, year):
    "Return the public holidays of a year, from the holidays library"
    try:
        return frozenset(holidays.country_holidays(
                country, subdiv=subdivision or None, years=year))
    except NotImplementedError:
        return frozenset()


class ClosedDays:
    "The public holidays of the configured country and the extra closures"

    def __init__(self, country, subdivision, extra):
        self.country = country
        self.subdivision = subdivision
        self.extra = frozenset(extra)

    def __contains__(self, day):
        if day in self.extra:
            return True
        if not self.country:
            return False
        return day in public_holidays(
            self.country, self.subdivision, day.year)


class OpeningPeriod(ModelSQL, ModelView):
    "An opening period of the agency on a weekday"
    __name__ = 'forfait.opening_period'
    __string__ = "Forfait Opening Period"

    weekday = fields.Selection(
        WEEKDAYS, "Weekday", required=True, sort=False)
    start_time = fields.Time("Start Time", required=True)
    end_time = fields.Time("End Time", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [
            ('weekday', 'ASC'), ('start_time', 'ASC'), ('id', 'ASC')]

    @classmethod
    def validate_fields(cls, periods, field_names):
        super().validate_fields(periods, field_names)
        for period in periods:
            if period.end_time <= period.start_time:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_opening_period_times',
                        start=period.start_time.strftime('%H:%M'),
                        end=period.end_time.strftime('%H:%M')))


class Closure(ModelSQL, ModelView):
    "A day the agency is closed, besides the public holidays"
    __name__ = 'forfait.closure'
    __string__ = "Forfait Closure"

    date = fields.Date("Date", required=True)
    name = fields.Char("Name", required=True, translate=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order = [('date', 'DESC'), ('id', 'DESC')]


class ServiceLevel(sequence_ordered(), DeactivableMixin, ModelSQL, ModelView):
    "The targets of a priority, for a forfait product or by default"
    __name__ = 'forfait.service_level'
    __string__ = "Forfait Service Level"

    product = fields.Many2One(
        'product.template', "Forfait",
        domain=[('forfait', '=', True)], ondelete='CASCADE',
        help="The forfait whose clients get these targets; "
        "empty for the clients of any other forfait.")
    priority = fields.Selection(
        PRIORITIES, "Priority", required=True, sort=False)
    response_time = fields.TimeDelta(
        "First Response", 'forfait_hours',
        domain=['OR',
            ('response_time', '=', None),
            ('response_time', '>', TimeDelta())],
        help="In opening hours, from the reception to the first response.")
    resolution_time = fields.TimeDelta(
        "Resolution", 'forfait_hours',
        domain=['OR',
            ('resolution_time', '=', None),
            ('resolution_time', '>', TimeDelta())],
        help="In opening hours, from the reception to the request done.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('product_priority_unique', Unique(t, t.product, t.priority),
                'webservice_forfait.msg_service_level_unique'),
            ]


class ProductTemplate(metaclass=PoolMeta):
    __name__ = 'product.template'

    forfait_service_levels = fields.One2Many(
        'forfait.service_level', 'product', "Service Levels",
        states={'invisible': ~Eval('forfait')})


class Configuration(metaclass=PoolMeta):
    __name__ = 'forfait.configuration'

    holidays_country = fields.Char(
        "Public Holidays Country",
        help="The ISO code of the country whose public holidays close the "
        "agency, e.g. FR; empty for none.")
    holidays_subdivision = fields.Char(
        "Public Holidays Subdivision",
        help="The code of the region whose own public holidays also close "
        "the agency, e.g. 972 for Martinique.")
    sla_warning = fields.TimeDelta(
        "Deadline Warning", 'forfait_hours', required=True,
        domain=[('sla_warning', '>=', TimeDelta())],
        help="How long before a deadline a request is shown as near and "
        "its assignee reminded.")

    @classmethod
    def default_holidays_country(cls):
        return 'FR'

    @classmethod
    def default_holidays_subdivision(cls):
        return '972'

    @classmethod
    def default_sla_warning(cls):
        return datetime.timedelta(days=1)

    @classmethod
    def validate_fields(cls, configurations, field_names):
        super().validate_fields(configurations, field_names)
        for configuration in configurations:
            country = configuration.holidays_country
            if not country:
                continue
            try:
                holidays.country_holidays(
                    country, subdiv=configuration.holidays_subdivision or None)
            except NotImplementedError:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_holidays_unknown',
                        country=country,
                        subdivision=configuration.holidays_subdivision or ''))

    def opening_hours(self, company=None):
        "Return the OpeningHours of the agency"
        pool = Pool()
        Period = pool.get('forfait.opening_period')
        Closure = pool.get('forfait.closure')
        Company = pool.get('company.company')
        week = {}
        with without_check_access():
            for period in Period.search([]):
                week.setdefault(int(period.weekday), []).append(
                    (period.start_time, period.end_time))
            extra = [c.date for c in Closure.search([])]
        if company is None:
            company = Transaction().context.get('company')
        timezone = Company.get_timezone(company) if company else None
        return OpeningHours(
            week,
            ClosedDays(
                self.holidays_country, self.holidays_subdivision, extra),
            tz.ZoneInfo(timezone) if timezone else None)


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    priority = fields.Selection(
        PRIORITIES, "Priority", required=True, sort=False,
        states={'readonly': Eval('state').in_(['done', 'cancelled'])},
        help="How soon the request must be handled: "
        "it sets the deadlines with the client's forfait.")
    priority_string = priority.translated('priority')
    sla_start = fields.Timestamp(
        "Received", readonly=True,
        help="When the request was received: its deadlines count from then.")
    first_response = fields.Timestamp(
        "First Response", readonly=True,
        help="When the request was first opened by the staff.")
    response_deadline = fields.Timestamp(
        "Response Deadline", readonly=True,
        help="When the request must be opened at the latest, in opening "
        "hours; empty while it waits.")
    resolution_deadline = fields.Timestamp(
        "Resolution Deadline", readonly=True,
        help="When the request must be done at the latest, in opening "
        "hours; empty while it waits.")
    sla_paused = fields.TimeDelta(
        "Time Waited", 'forfait_hours', readonly=True,
        help="The opening hours spent waiting for the client or for hours: "
        "they do not count against the deadlines.")
    sla_paused_since = fields.Timestamp("Waiting Since", readonly=True)
    response_reminded = fields.Boolean("Response Reminded", readonly=True)
    resolution_reminded = fields.Boolean(
        "Resolution Reminded", readonly=True)
    response_status = fields.Function(fields.Selection([
                (None, ""),
                ('met', "Met"),
                ('ok', "On Time"),
                ('near', "Near"),
                ('late', "Late"),
                ], "Response Status"), 'get_sla_status')
    resolution_status = fields.Function(fields.Selection([
                (None, ""),
                ('met', "Met"),
                ('ok', "On Time"),
                ('near', "Near"),
                ('late', "Late"),
                ], "Resolution Status"), 'get_sla_status')

    # the states whose time does not count against the deadlines
    _sla_paused_states = {'waiting'}
    # the fields whose change computes the deadlines again
    _sla_fields = {'priority', 'party', 'company', 'sla_start'}

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.resolution_deadline, Index.Range()),
                where=t.state.in_(['draft', 'open'])))

    @classmethod
    def order_priority(cls, tables):
        "Sort from low to urgent rather than by name"
        table, _ = tables[None]
        return [Case(*((table.priority == k, i)
                    for i, (k, _) in enumerate(PRIORITIES)), else_=1)]

    @classmethod
    def default_priority(cls):
        return 'normal'

    @classmethod
    def default_sla_paused(cls):
        return ZERO

    @classmethod
    def default_response_reminded(cls):
        return False

    @classmethod
    def default_resolution_reminded(cls):
        return False

    @classmethod
    def view_attributes(cls):
        def colour(name):
            status = Eval(name + '_status')
            return If(status == 'late', 'danger',
                If(status == 'near', 'warning', ''))
        return super().view_attributes() + [
            ('/tree/field[@name="response_deadline"]', 'visual',
                colour('response'), ['response_status']),
            ('/tree/field[@name="resolution_deadline"]', 'visual',
                colour('resolution'), ['resolution_status']),
            ]

    @classmethod
    def get_sla_status(cls, requests, names):
        "The state of the deadlines, from the stored fields alone"
        warning = Pool().get('forfait.configuration')(1).sla_warning
        current = now()

        def status(deadline, met):
            if met:
                return 'met'
            if not deadline:
                return None
            if deadline <= current:
                return 'late'
            if deadline - warning <= current:
                return 'near'
            return 'ok'

        result = {n: {} for n in names}
        for request in requests:
            closed = request.state in {'done', 'cancelled'}
            values = {
                'response_status': status(
                    request.response_deadline,
                    bool(request.first_response) or closed),
                'resolution_status': status(
                    request.resolution_deadline, closed),
                }
            for name in names:
                result[name][request.id] = values[name]
        return result

    @classmethod
    def forfait_templates(cls, requests):
        "Return {party id: the template of its largest forfait valid today}"
        pool = Pool()
        Credit = pool.get('forfait.credit')
        Line = pool.get('sale.subscription.line')
        Date = pool.get('ir.date')
        parties = {r.party.id for r in requests if r.party}
        if not parties:
            return {}
        today = Date.today()
        with without_check_access():
            credits = Credit.search([
                    ('party', 'in', list(parties)),
                    ('start_date', '<=', today),
                    ('end_date', '>=', today),
                    ('state', '!=', 'expired'),
                    ])
        templates = {}
        for credit in credits:
            if not isinstance(credit.origin, Line):
                continue
            template = credit.origin.service.product.template
            current = templates.get(credit.party.id)
            if not template.forfait:
                continue
            if (current is None or (
                        template.forfait_monthly_hours
                        > current.forfait_monthly_hours)):
                templates[credit.party.id] = template
        return templates

    @classmethod
    def service_levels(cls):
        "Return {(template id or None, priority): level}"
        Level = Pool().get('forfait.service_level')
        with without_check_access():
            return {
                (l.product.id if l.product else None, l.priority): l
                for l in Level.search([])}

    @classmethod
    def compute_deadlines(cls, requests):
        "Return {request id: values} of the deadlines of requests"
        config = Pool().get('forfait.configuration')(1)
        levels = cls.service_levels()
        templates = cls.forfait_templates(requests)
        hours = {}
        result = {}
        for request in requests:
            company = request.company.id
            if company not in hours:
                hours[company] = config.opening_hours(company)
            opening = hours[company]
            template = templates.get(
                request.party.id if request.party else None)
            level = levels.get(
                (template.id if template else None, request.priority))
            if level is None and template:
                level = levels.get((None, request.priority))
            values = {
                'response_deadline': None,
                'resolution_deadline': None,
                }
            start = request.sla_start or request.create_date
            if (level and start
                    and request.state not in cls._sla_paused_states):
                paused = request.sla_paused or ZERO
                if level.response_time:
                    values['response_deadline'] = opening.add(
                        start, level.response_time + paused)
                if level.resolution_time:
                    values['resolution_deadline'] = opening.add(
                        start, level.resolution_time + paused)
            for name in ['response', 'resolution']:
                if values[name + '_deadline'] != getattr(
                        request, name + '_deadline'):
                    values[name + '_reminded'] = False
            result[request.id] = values
        return result

    @classmethod
    def set_deadlines(cls, requests):
        "Compute and store the deadlines of requests"
        to_write = []
        computed = cls.compute_deadlines(requests)
        for request in requests:
            to_write.extend(([request], computed[request.id]))
        if to_write:
            with Transaction().set_context(_forfait_sla=True):
                cls.write(*to_write)

    @classmethod
    def sla_pause(cls, requests, at=None):
        "Stop counting the deadlines of requests from at"
        at = at or now()
        requests = [r for r in requests if not r.sla_paused_since]
        if requests:
            with Transaction().set_context(_forfait_sla=True):
                cls.write(requests, {'sla_paused_since': at})

    @classmethod
    def sla_resume(cls, requests, at=None):
        "Count the deadlines of requests again from at"
        config = Pool().get('forfait.configuration')(1)
        at = at or now()
        to_write = []
        for request in requests:
            if not request.sla_paused_since:
                continue
            opening = config.opening_hours(request.company.id)
            to_write.extend(([request], {
                        'sla_paused': (request.sla_paused or ZERO)
                        + opening.elapsed(request.sla_paused_since, at),
                        'sla_paused_since': None,
                        }))
        if to_write:
            with Transaction().set_context(_forfait_sla=True):
                cls.write(*to_write)

    @classmethod
    def create(cls, vlist):
        vlist = [v.copy() for v in vlist]
        for values in vlist:
            values.setdefault('sla_start', now())
        requests = super().create(vlist)
        cls.set_deadlines(requests)
        return requests

    @classmethod
    def write(cls, *args):
        if Transaction().context.get('_forfait_sla'):
            super().write(*args)
            return
        actions = iter(args)
        changed, states = [], {}
        for requests, values in zip(actions, actions):
            if cls._sla_fields & set(values) or 'state' in values:
                changed.extend(requests)
            if 'state' in values:
                for request in requests:
                    states[request.id] = request.state
        super().write(*args)
        if not changed:
            return
        changed = cls.browse(list({r.id for r in changed}))
        paused, resumed, opened = [], [], []
        for request in changed:
            before = states.get(request.id)
            if before is None or before == request.state:
                continue
            was = before in cls._sla_paused_states
            now_paused = request.state in cls._sla_paused_states
            if now_paused and not was:
                paused.append(request)
            elif was and not now_paused:
                resumed.append(request)
            if request.state == 'open' and not request.first_response:
                opened.append(request)
        cls.sla_pause(paused)
        cls.sla_resume(resumed)
        if opened:
            with Transaction().set_context(_forfait_sla=True):
                cls.write(opened, {'first_response': now()})
        cls.set_deadlines(cls.browse([r.id for r in changed]))

    @classmethod
    def copy(cls, requests, default=None):
        default = default.copy() if default is not None else {}
        for name in [
                'sla_start', 'first_response', 'response_deadline',
                'resolution_deadline', 'sla_paused_since']:
            default.setdefault(name, None)
        default.setdefault('sla_paused', ZERO)
        default.setdefault('response_reminded', False)
        default.setdefault('resolution_reminded', False)
        return super().copy(requests, default=default)

    @classmethod
    def remind_deadlines(cls):
        """Cron: tell the assignee (or the forfait staff) of the requests
        whose deadline is near or past, once for each deadline"""
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Notification = pool.get('res.notification')
        warning = Config(1).sla_warning
        limit = now() + warning
        requests = cls.search(['OR', [
                    ('state', 'in', ['draft', 'open']),
                    ('first_response', '=', None),
                    ('response_reminded', '=', False),
                    ('response_deadline', '!=', None),
                    ('response_deadline', '<=', limit),
                    ], [
                    ('state', 'in', ['draft', 'open']),
                    ('resolution_reminded', '=', False),
                    ('resolution_deadline', '!=', None),
                    ('resolution_deadline', '<=', limit),
                    ]])
        staff = None
        notifications = []
        to_write = []
        for request in requests:
            users = []
            assignee = getattr(request, 'assignee', None)
            if assignee:
                users = [assignee]
            else:
                if staff is None:
                    staff = cls._forfait_staff()
                users = staff
            values = {}
            kinds = []
            if (not request.first_response
                    and not request.response_reminded
                    and request.response_deadline
                    and request.response_deadline <= limit):
                kinds.append(('response', request.response_deadline))
                values['response_reminded'] = True
            if (not request.resolution_reminded
                    and request.resolution_deadline
                    and request.resolution_deadline <= limit):
                kinds.append(('resolution', request.resolution_deadline))
                values['resolution_reminded'] = True
            for user in users:
                notifications.extend(
                    request._deadline_notification(user, kind, deadline)
                    for kind, deadline in kinds)
            to_write.extend(([request], values))
        with without_check_access():
            Notification.save(notifications)
            if to_write:
                with Transaction().set_context(_forfait_sla=True):
                    cls.write(*to_write)

    @classmethod
    def _forfait_staff(cls):
        "The active users of the Forfait group"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        group = ModelData.get_id('webservice_forfait', 'group_forfait')
        with without_check_access():
            return User.search([('groups', '=', group)])

    def _deadline_notification(self, user, kind, deadline):
        pool = Pool()
        Notification = pool.get('res.notification')
        Company = pool.get('company.company')
        timezone = Company.get_timezone(self.company.id)
        local = deadline.replace(tzinfo=UTC)
        if timezone:
            local = local.astimezone(tz.ZoneInfo(timezone))
        language = user.language.code if user.language else None
        with Transaction().set_context(language=language):
            label = gettext(
                'webservice_forfait.msg_deadline_%s_label' % kind,
                request=self.rec_name)
            description = gettext(
                'webservice_forfait.msg_deadline_description',
                deadline=local.strftime('%d/%m/%Y %H:%M'),
                priority=self.priority_string,
                party=self.party.rec_name if self.party else '')
        return Notification(
            user=user, label=label, description=description,
            icon='tryton-warning', model=self.__name__,
            records=json.dumps([self.id]))


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('forfait.request|remind_deadlines',
                "Remind Forfait Request Deadlines"))
