from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps

from sql.aggregate import Sum

from trytond.i18n import gettext
from trytond.model import (
    ChatMixin, Index, ModelSQL, ModelView, Workflow, fields)
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Eval, If
from trytond.tools import grouped_slice
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import LedgerAccessError, PostingError
from .forfait import ID_SLICE, SQL_IN, to_timedelta
from .ledger import ZERO
from .validation import check_values

CATEGORIES = [
    ('layout', "Layout"),
    ('content', "Content and Texts"),
    ('illustrations', "Illustrations"),
    ('animations', "Animations"),
    ('features', "Site Features Administration"),
    ('information', "Information Update"),
    ('newsletter', "Newsletter Sending"),
    ('other', "Other"),
    ]

# True while a workflow method of the requests runs in this thread: only
# then may a request's state and posted figures change
_in_workflow = ContextVar('forfait_request_workflow', default=False)


@contextmanager
def workflow_writes():
    "Allow the writes of the requests' own workflow in the block"
    token = _in_workflow.set(True)
    try:
        yield
    finally:
        _in_workflow.reset(token)


def workflow(func):
    "Run a transition (put it above Workflow.transition) with its writes"
    @wraps(func)
    def wrapper(*args, **kwargs):
        with workflow_writes():
            return func(*args, **kwargs)
    return wrapper


class Request(Workflow, ModelSQL, ModelView, ChatMixin):
    __name__ = 'forfait.request'
    __string__ = "Update Request"
    _rec_name = 'number'
    _readonly = Eval('state').in_(['done', 'cancelled'])

    number = fields.Char("Number", readonly=True)
    company = fields.Many2One(
        'company.company', "Company", required=True,
        states={'readonly': Eval('state') != 'draft'})
    party = fields.Many2One(
        'party.party', "Client",
        context={'company': Eval('company', -1)}, depends={'company'},
        states={
            'readonly': Eval('state') != 'draft',
            'required': Eval('state').in_(['open', 'done']),
            },
        help="The client whose forfait pays for the update.")
    contact = fields.Many2One(
        'party.contact_mechanism', "Contact",
        domain=[
            ('party', '=', Eval('party', -1)),
            ('type', '=', 'email'),
            ],
        context={'company': Eval('company', -1)}, depends={'company'},
        states={'readonly': _readonly},
        help="The client's e-mail address for this request.")
    subject = fields.Char(
        "Subject", required=True, states={'readonly': _readonly})
    description = fields.Text(
        "Description", states={'readonly': _readonly})
    category = fields.Selection(
        CATEGORIES, "Category", required=True, sort=False,
        states={'readonly': _readonly})
    category_string = category.translated('category')
    channel = fields.Selection([
            ('email', "E-mail"),
            ('portal', "Portal"),
            ('staff', "Staff"),
            ], "Channel", required=True, sort=False,
        states={'readonly': Eval('state') != 'draft'},
        help="How the client sent the request.")
    channel_string = channel.translated('channel')
    request_date = fields.Date(
        "Request Date", required=True,
        states={'readonly': Eval('state') != 'draft'})
    done_date = fields.Date("Done Date", readonly=True)
    timesheet_work = fields.Many2One(
        'timesheet.work', "Timesheet Work", readonly=True,
        ondelete='RESTRICT')
    timesheet_lines = fields.One2Many(
        'timesheet.line', 'forfait_request', "Timesheet Lines",
        domain=[('company', '=', Eval('company', -1))],
        states={'readonly': _readonly | (Eval('id', -1) < 0)},
        help="The time spent by the staff on the request.")
    time_spent = fields.Function(
        fields.TimeDelta(
            "Time Spent", 'forfait_hours', help="The billable time logged."),
        'get_times')
    time_goodwill = fields.Function(
        fields.TimeDelta(
            "Goodwill Time", 'forfait_hours',
            help="The non-billable time logged."),
        'get_times')
    billed = fields.TimeDelta(
        "Billed Time Posted", 'forfait_hours', readonly=True)
    time_billed = fields.Function(
        fields.TimeDelta(
            "Time Billed", 'forfait_hours',
            help="The time spent after rounding: what the forfait pays."),
        'get_times')
    consumptions = fields.One2Many(
        'forfait.consumption', 'request', "Consumptions", readonly=True)
    email_sender = fields.Char(
        "E-mail Sender", readonly=True,
        states={'invisible': Eval('channel') != 'email'},
        help="The address the request was received from.")
    email_message_id = fields.Char("E-mail Message-ID", readonly=True)
    state = fields.Selection([
            ('draft', "Draft"),
            ('waiting', "Waiting for Hours"),
            ('open', "Open"),
            ('done', "Done"),
            ('cancelled', "Cancelled"),
            ], "State", readonly=True, required=True, sort=False)
    state_string = state.translated('state')

    del _readonly

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                # a client's requests in the default order, a page at a time
                Index(t,
                    (t.party, Index.Equality()),
                    (t.request_date, Index.Range(order='DESC')),
                    (t.id, Index.Range(order='DESC'))),
                Index(t, (t.number, Index.Similarity())),
                Index(t,
                    (t.state, Index.Equality(cardinality='low')),
                    where=t.state.in_(['draft', 'waiting', 'open'])),
                })
        cls._order = [('request_date', 'DESC'), ('id', 'DESC')]
        cls._transitions |= {
            ('draft', 'open'),
            ('draft', 'waiting'),
            ('waiting', 'open'),
            ('waiting', 'cancelled'),
            ('draft', 'cancelled'),
            ('open', 'done'),
            ('open', 'draft'),
            ('open', 'cancelled'),
            ('done', 'open'),
            ('cancelled', 'draft'),
            }
        cls._buttons.update({
                'draft': {
                    'invisible': ~Eval('state').in_(['open', 'cancelled']),
                    'icon': If(Eval('state') == 'cancelled',
                        'tryton-undo', 'tryton-back'),
                    'depends': ['state'],
                    },
                'open': {
                    'invisible': ~Eval('state').in_(['draft', 'waiting']),
                    'icon': 'tryton-forward',
                    'depends': ['state'],
                    },
                'done': {
                    'invisible': Eval('state') != 'open',
                    'icon': 'tryton-ok',
                    'depends': ['state'],
                    },
                'cancel': {
                    'invisible': ~Eval('state').in_(
                        ['draft', 'waiting', 'open']),
                    'icon': 'tryton-cancel',
                    'depends': ['state'],
                    },
                'reopen': {
                    'invisible': Eval('state') != 'done',
                    'icon': 'tryton-undo',
                    'depends': ['state'],
                    },
                })
        # changed only by the workflow's methods, whoever calls
        cls._workflow_fields = {
            'state', 'billed', 'done_date', 'consumptions', 'timesheet_work'}
        # what stays writable on done and cancelled requests; modules add
        # their follow-up fields (assignee, markers, notes) to it
        cls._writable_when_closed = {'assignee', 'to_answer'}

    @classmethod
    def default_company(cls):
        return Transaction().context.get('company')

    @classmethod
    def default_state(cls):
        return 'draft'

    @classmethod
    def default_channel(cls):
        return 'staff'

    @classmethod
    def default_category(cls):
        return 'other'

    @classmethod
    def default_request_date(cls):
        return Pool().get('ir.date').today()

    @fields.depends('party', 'contact')
    def on_change_party(self):
        if self.contact and self.contact.party != self.party:
            self.contact = None
        if self.party and not self.contact:
            self.contact = self.party.contact_mechanism_get('email')

    def get_rec_name(self, name):
        if self.number:
            return '%s %s' % (self.number, self.subject)
        return self.subject

    @classmethod
    def search_rec_name(cls, name, clause):
        operator = 'OR' if not clause[1].startswith('!') else 'AND'
        return [operator,
            ('number',) + tuple(clause[1:]),
            ('subject',) + tuple(clause[1:]),
            ('party.name',) + tuple(clause[1:]),
            ('contact.value',) + tuple(clause[1:]),
            ('email_sender',) + tuple(clause[1:]),
            ('description',) + tuple(clause[1:]),
            ]

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('/tree', 'visual',
                If(Eval('state') == 'cancelled', 'muted', '')),
            ]

    @classmethod
    def spent_by_request(cls, request_ids):
        "Return {request id: (billable, goodwill)} in one query per slice"
        Line = Pool().get('timesheet.line')
        line = Line.__table__()
        cursor = Transaction().connection.cursor()
        spent = defaultdict(lambda: [ZERO, ZERO])
        for sub_ids in grouped_slice(request_ids, ID_SLICE):
            cursor.execute(*line.select(
                    line.forfait_request, line.billable, Sum(line.duration),
                    where=SQL_IN(line.forfait_request, sub_ids),
                    group_by=[line.forfait_request, line.billable]))
            for request_id, billable, duration in cursor:
                spent[request_id][0 if billable else 1] += (
                    to_timedelta(duration))
        return spent

    @classmethod
    def get_times(cls, requests, names):
        config = Pool().get('forfait.configuration')(1)
        spent = cls.spent_by_request([r.id for r in requests])
        result = {n: {} for n in names}
        for request in requests:
            billable, goodwill = spent[request.id]
            values = {
                'time_spent': billable,
                'time_goodwill': goodwill,
                'time_billed': (
                    request.billed if request.state == 'done'
                    else config.round(billable)),
                }
            for name in names:
                result[name][request.id] = values[name]
        return result

    @classmethod
    def create(cls, vlist):
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Work = pool.get('timesheet.work')
        vlist = [v.copy() for v in vlist]
        if not _in_workflow.get():
            cls._check_create(vlist)
        sequence = Config(1).request_sequence
        for values in vlist:
            if not values.get('number'):
                values['number'] = sequence.get()
        requests = super().create(vlist)
        works = [Work(origin=r, company=r.company) for r in requests]
        with without_check_access():
            Work.save(works)
        for request, work in zip(requests, works):
            request.timesheet_work = work
        with workflow_writes():
            cls.save(requests)
        return requests

    @classmethod
    def _check_create(cls, vlist):
        "Refuse requests created in another state than a draft's"
        for values in vlist:
            for name, empty in [
                    ('state', 'draft'), ('billed', None),
                    ('done_date', None)]:
                if values.get(name, empty) != empty:
                    names = cls.__names__(name)
                    value = values[name]
                    if name == 'state':
                        value = dict(cls.fields_get(['state'])['state'][
                                'selection']).get(value, value)
                    raise LedgerAccessError(gettext(
                            'webservice_forfait.msg_request_create_state',
                            record=values.get('subject') or '',
                            value=value, **names))

    @classmethod
    def copy(cls, requests, default=None):
        default = default.copy() if default is not None else {}
        for name in ['number', 'timesheet_work', 'done_date', 'billed']:
            default.setdefault(name, None)
        default.setdefault('timesheet_lines')
        default.setdefault('consumptions')
        default.setdefault('request_date', cls.default_request_date())
        return super().copy(requests, default=default)

    @classmethod
    def check_modification(cls, mode, requests, values=None, external=False):
        super().check_modification(
            mode, requests, values=values, external=external)
        if mode == 'write' and not _in_workflow.get():
            cls._check_write(requests, values)
        if mode == 'delete':
            for request in requests:
                if request.state not in {'draft', 'cancelled'} or (
                        request.consumptions):
                    raise AccessError(gettext(
                            'webservice_forfait.msg_request_delete',
                            request=request.rec_name))

    @classmethod
    def preprocess_values(cls, mode, values):
        "Refuse NUL characters, impossible dates and oversized texts"
        config = Pool().get('forfait.configuration')(1)
        check_values(
            cls, values, config.lengths('subject', 'description'))
        return super().preprocess_values(mode, values)

    @classmethod
    def _check_write(cls, requests, values):
        """Refuse changes of the workflow's fields and of closed requests
        made outside the workflow's methods"""
        for request in requests:
            # clients send the lines they show as added again
            changed = {
                n for n in values if not cls._unchanged(request, n, values[n])}
            if guarded := sorted(cls._workflow_fields & changed):
                raise LedgerAccessError(gettext(
                        'webservice_forfait.msg_request_workflow_field',
                        **cls.__names__(guarded[0], request)))
            if request.state in {'done', 'cancelled'} and (
                    closed := sorted(changed - cls._writable_when_closed)):
                raise LedgerAccessError(gettext(
                        'webservice_forfait.msg_request_closed',
                        state=request.state_string,
                        **cls.__names__(closed[0], request)))

    @classmethod
    def _unchanged(cls, request, name, value):
        "Tell whether writing value to field name leaves request as it is"
        field = cls._fields[name]
        current = getattr(request, name)
        if field._type in {'one2many', 'many2many'}:
            ids = {r.id for r in current}
            return all(
                action == 'add' and set(targets) <= ids
                for action, targets, *_ in (value or []))
        if isinstance(current, ModelSQL):
            current = current.id
        return current == value

    @classmethod
    def delete(cls, requests):
        Work = Pool().get('timesheet.work')
        works = [r.timesheet_work for r in requests if r.timesheet_work]
        with workflow_writes():
            cls.write(requests, {'timesheet_work': None})
        super().delete(requests)
        Work.delete(works)

    @classmethod
    @ModelView.button
    @workflow
    @Workflow.transition('draft')
    def draft(cls, requests):
        pass

    @classmethod
    @ModelView.button
    def open(cls, requests):
        """Open the requests; under the "block" policy, those of clients
        without available hours wait, unless staff open them again"""
        config = Pool().get('forfait.configuration')(1)
        waiting = [
            r for r in requests if r.state == 'draft'
            and config.overage_policy == 'block'
            and r.party and r.party.forfait_available <= ZERO]
        cls.wait(waiting)
        cls.start([r for r in requests if r not in waiting])

    @classmethod
    @workflow
    @Workflow.transition('open')
    def start(cls, requests):
        pass

    @classmethod
    @workflow
    @Workflow.transition('waiting')
    def wait(cls, requests):
        for request in requests:
            request.tell_waiting()

    @classmethod
    def release_waiting(cls, parties):
        "Open the waiting requests of the parties who have hours again"
        requests = cls.search([
                ('state', '=', 'waiting'),
                ('party', 'in', [p.id for p in parties]),
                ])
        cls.start([r for r in requests if r.party.forfait_available > ZERO])

    @classmethod
    @ModelView.button
    @workflow
    @Workflow.transition('cancelled')
    def cancel(cls, requests):
        pass

    @classmethod
    @ModelView.button
    @workflow
    @Workflow.transition('done')
    def done(cls, requests):
        "Round the time spent and post it against the client's credits"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Consumption = pool.get('forfait.consumption')
        Date = pool.get('ir.date')
        config = Config(1)
        spent = cls.spent_by_request([r.id for r in requests])
        for request in requests:
            billable, goodwill = spent[request.id]
            if billable + goodwill <= ZERO:
                raise PostingError(gettext(
                        'webservice_forfait.msg_request_no_time',
                        request=request.rec_name))
            request.billed = config.round(billable)
            with Transaction().set_context(company=request.company.id):
                request.done_date = Date.today()
        Consumption.post(requests)
        cls.save(requests)

    @classmethod
    @ModelView.button_action('webservice_forfait.wizard_request_reopen')
    def reopen(cls, requests):
        pass

    @classmethod
    @workflow
    @Workflow.transition('open')
    def reverse(cls, requests, reason):
        "Reverse the posted time of done requests and reopen them"
        Consumption = Pool().get('forfait.consumption')
        Consumption.reverse(requests, reason)
        cls.write(requests, {'billed': None, 'done_date': None})


class RequestReopen(Wizard):
    __name__ = 'forfait.request.reopen'
    start = StateView(
        'forfait.request.reopen.start',
        'webservice_forfait.request_reopen_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Reopen", 'reopen', 'tryton-ok', default=True),
            ])
    reopen = StateTransition()

    def transition_reopen(self):
        self.model.reverse(
            [r for r in self.records if r.state == 'done'],
            self.start.reason)
        return 'end'


class RequestReopenStart(ModelView):
    __name__ = 'forfait.request.reopen.start'
    __string__ = "Reopen Update Request"

    reason = fields.Char(
        "Reason", required=True,
        help="Why the posted time is reversed; kept on the ledger.")
