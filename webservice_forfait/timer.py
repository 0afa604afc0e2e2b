"A start/stop timer on a request whose elapsed time becomes timesheet lines"
import datetime
import json

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, Workflow, fields
from trytond.model.fields.selection import TranslatedSelection
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval, TimeDelta
from trytond.tools import timezone as tz
from trytond.transaction import Transaction, without_check_access

from .exceptions import TimerError
from .ledger import ZERO, format_duration

# the states whose requests take timesheet lines (see timesheet.Line)
TIMED_STATES = {'draft', 'open'}


def now():
    "Return the current time as stored by trytond: naive UTC, to the second"
    return datetime.datetime.now().replace(microsecond=0)


class Timer(ModelSQL, ModelView):
    "A running timer: it exists from start to stop"
    __name__ = 'forfait.request.timer'
    __string__ = "Request Timer"

    user = fields.Many2One(
        'res.user', "User", required=True, readonly=True,
        ondelete='CASCADE')
    request = fields.Many2One(
        'forfait.request', "Update Request", required=True, readonly=True,
        ondelete='CASCADE',
        domain=[('state', 'in', sorted(TIMED_STATES))])
    start = fields.Timestamp("Start", required=True, readonly=True)
    elapsed = fields.Function(
        fields.TimeDelta("Elapsed", 'forfait_hours'), 'get_elapsed')
    flagged = fields.Boolean(
        "Flagged", readonly=True,
        help="The owner was told the timer runs for too long.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('user_unique', Unique(t, t.user),
                'webservice_forfait.msg_timer_user_unique'),
            ]
        cls._order = [('start', 'ASC'), ('id', 'ASC')]
        cls._buttons.update({
                'stop': {'icon': 'tryton-ok'},
                })

    @classmethod
    def default_flagged(cls):
        return False

    @property
    def local_start(self):
        "The start in the time zone of the request's company"
        Company = Pool().get('company.company')
        start = self.start.replace(tzinfo=datetime.timezone.utc)
        timezone = Company.get_timezone(self.request.company.id)
        if timezone:
            start = start.astimezone(tz.ZoneInfo(timezone))
        return start

    @classmethod
    def get_elapsed(cls, timers, name):
        current = now()
        return {t.id: current - t.start for t in timers}

    @classmethod
    def start_on(cls, requests, user=None, at=None):
        """Start a timer of user (default: the current one) on the first of
        requests, stopping the timer the user had running"""
        if user is None:
            user = Transaction().user
        at = at or now()
        request, = requests
        if request.state not in TIMED_STATES:
            raise TimerError(gettext(
                    'webservice_forfait.msg_timer_request_state',
                    request=request.rec_name,
                    state=request.timer_state_string))
        cls.employee(user, request)
        with without_check_access():
            running = cls.search([('user', '=', user)])
            cls.stop(running, at=at)
            timer, = cls.create([{
                        'user': user, 'request': request.id, 'start': at}])
        return timer

    @staticmethod
    def employee(user, request):
        "Return the employee of user who logs time for the request's company"
        User = Pool().get('res.user')
        user = User(user)
        employees = [user.employee] if user.employee else []
        employees += list(user.employees)
        for employee in employees:
            if employee.company == request.company:
                return employee
        raise TimerError(gettext(
                'webservice_forfait.msg_timer_no_employee',
                user=user.rec_name, company=request.company.rec_name))

    @classmethod
    @ModelView.button
    def stop(cls, timers, at=None):
        """Stop the timers: the exact elapsed time of each becomes a
        timesheet line of its request, which posting rounds like any other"""
        pool = Pool()
        Line = pool.get('timesheet.line')
        at = at or now()
        lines = []
        for timer in timers:
            request = timer.request
            # posted time never changes: a request left the timed states
            # only through stop_request_timers, which stopped its timers
            if request.state not in TIMED_STATES:
                continue
            duration = at - timer.start
            if duration <= ZERO:
                continue
            lines.append(Line(
                    company=request.company,
                    employee=cls.employee(timer.user.id, request),
                    date=timer.local_start.date(),
                    duration=duration,
                    work=request.timesheet_work,
                    forfait_request=request,
                    description=gettext(
                        'webservice_forfait.msg_timer_line_description')))
        with without_check_access():
            Line.save(lines)
            cls.delete(timers)
        return lines

    @classmethod
    def flag_long_running(cls):
        "Cron: tell the owners of timers running for too long, once each"
        pool = Pool()
        Notification = pool.get('res.notification')
        config = pool.get('forfait.configuration')(1)
        if not config.timer_max_duration:
            return
        timers = cls.search([
                ('flagged', '=', False),
                ('start', '<', now() - config.timer_max_duration),
                ])
        notifications = []
        for timer in timers:
            language = timer.user.language
            with Transaction().set_context(
                    language=language.code if language else None):
                notifications.append(Notification(
                        user=timer.user,
                        label=gettext(
                            'webservice_forfait.msg_timer_long_label',
                            request=timer.request.rec_name),
                        description=gettext(
                            'webservice_forfait.msg_timer_long_description',
                            start=timer.local_start.strftime(
                                '%d/%m/%Y %H:%M'),
                            maximum=format_duration(
                                config.timer_max_duration)),
                        icon='tryton-warning',
                        model='forfait.request',
                        records=json.dumps([timer.request.id])))
        with without_check_access():
            Notification.save(notifications)
            cls.write(timers, {'flagged': True})


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    timers = fields.One2Many(
        'forfait.request.timer', 'request', "Timers", readonly=True)
    timer_start = fields.Function(
        fields.Timestamp(
            "Timer Started",
            help="When the timer you run on this request was started."),
        'get_timer')
    timer_running = fields.Function(
        fields.Boolean("Timer Running"), 'get_timer')
    timer_state_string = TranslatedSelection('state')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'start_timer': {
                    'invisible': (
                        ~Eval('state').in_(sorted(TIMED_STATES))
                        | Eval('timer_running', False)
                        | (Eval('id', -1) < 0)),
                    'icon': 'tryton-launch',
                    'depends': ['state', 'timer_running'],
                    },
                'stop_timer': {
                    'invisible': ~Eval('timer_running', False),
                    'icon': 'tryton-ok',
                    'depends': ['timer_running'],
                    },
                })

    @classmethod
    def get_timer(cls, requests, names):
        "The current user's timer, in one query for all the requests"
        Timer = Pool().get('forfait.request.timer')
        result = {n: {r.id: None for r in requests} for n in names}
        if 'timer_running' in result:
            result['timer_running'] = {r.id: False for r in requests}
        with without_check_access():
            timers = Timer.search([
                    ('user', '=', Transaction().user),
                    ('request', 'in', [r.id for r in requests]),
                    ])
        for timer in timers:
            if 'timer_start' in result:
                result['timer_start'][timer.request.id] = timer.start
            if 'timer_running' in result:
                result['timer_running'][timer.request.id] = True
        return result

    @classmethod
    @ModelView.button
    def start_timer(cls, requests):
        "Start the user's timer on the request (one timer runs at a time)"
        if requests:
            Pool().get('forfait.request.timer').start_on(requests[:1])

    @classmethod
    @ModelView.button
    def stop_timer(cls, requests):
        Timer = Pool().get('forfait.request.timer')
        with without_check_access():
            Timer.stop(Timer.search([
                        ('user', '=', Transaction().user),
                        ('request', 'in', [r.id for r in requests]),
                        ]))

    @classmethod
    def stop_request_timers(cls, requests):
        "Stop the timers on requests before they leave the timed states"
        Timer = Pool().get('forfait.request.timer')
        with without_check_access():
            Timer.stop(Timer.search([
                        ('request', 'in', [
                                r.id for r in requests
                                if r.state in TIMED_STATES]),
                        ]))

    @classmethod
    @ModelView.button
    @Workflow.transition('done')
    def done(cls, requests):
        # the timers' time is logged first, so that the posting counts it
        cls.stop_request_timers(requests)
        super().done(requests)

    @classmethod
    @ModelView.button
    @Workflow.transition('cancelled')
    def cancel(cls, requests):
        cls.stop_request_timers(requests)
        super().cancel(requests)

    @classmethod
    @Workflow.transition('waiting')
    def wait(cls, requests):
        cls.stop_request_timers(requests)
        super().wait(requests)

    @classmethod
    def copy(cls, requests, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('timers')
        return super().copy(requests, default=default)


class Configuration(metaclass=PoolMeta):
    __name__ = 'forfait.configuration'

    timer_max_duration = fields.TimeDelta(
        "Timer Maximum Duration", 'forfait_hours',
        domain=['OR',
            ('timer_max_duration', '=', None),
            ('timer_max_duration', '>', TimeDelta())],
        help="A timer running for longer is flagged to its owner; "
        "empty never to flag.")

    @classmethod
    def default_timer_max_duration(cls):
        return datetime.timedelta(hours=4)


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('forfait.request.timer|flag_long_running',
                "Flag Long-running Forfait Timers"))
