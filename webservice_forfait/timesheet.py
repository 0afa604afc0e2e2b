import datetime as dt

from trytond.i18n import gettext
from trytond.model import Index, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

from .exceptions import ForfaitValidationError, LedgerAccessError
from .ledger import ZERO, format_duration
from .validation import check_values


class Work(metaclass=PoolMeta):
    __name__ = 'timesheet.work'

    @classmethod
    def _get_origin(cls):
        return super()._get_origin() + ['forfait.request']


class Line(metaclass=PoolMeta):
    __name__ = 'timesheet.line'

    forfait_request = fields.Many2One(
        'forfait.request', "Update Request", ondelete='CASCADE',
        domain=[
            ('company', '=', Eval('company', -1)),
            ('state', 'in', ['draft', 'open']),
            ],
        help="The update request the time is spent on.")
    billable = fields.Boolean(
        "Billable",
        help="Uncheck for goodwill time, which never consumes credit.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t,
                (t.forfait_request, Index.Range()),
                (t.billable, Index.Equality(cardinality='low'))))

    @classmethod
    def default_billable(cls):
        return True

    @fields.depends(
        'forfait_request', '_parent_forfait_request.timesheet_work',
        'work', '_parent_work.origin')
    def on_change_forfait_request(self):
        if self.forfait_request and self.forfait_request.timesheet_work:
            self.work = self.forfait_request.timesheet_work

    @fields.depends(
        'forfait_request', '_parent_forfait_request.timesheet_work',
        'work', '_parent_work.origin')
    def on_change_work(self):
        self.forfait_request = self._request_of(self.work)

    @staticmethod
    def _request_of(work):
        Request = Pool().get('forfait.request')
        if work and isinstance(work.origin, Request):
            return work.origin

    def get_rec_name(self, name):
        pool = Pool()
        Lang = pool.get('ir.lang')
        parts = []
        if self.forfait_request:
            parts.append(self.forfait_request.number or '')
        elif self.work:
            parts.append(self.work.rec_name)
        if self.date:
            parts.append(Lang.get().strftime(self.date))
        if self.employee:
            parts.append(self.employee.rec_name)
        if self.duration is not None:
            parts.append(format_duration(self.duration))
        return ' - '.join(p for p in parts if p) or str(self.id)

    @classmethod
    def check_input(cls, values):
        "Refuse what no client should write, before the database sees it"
        Config = Pool().get('forfait.configuration')
        config = Config(1)
        duration = values.get('duration')
        if isinstance(duration, dt.timedelta):
            if duration < ZERO:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_line_duration_negative',
                        duration=format_duration(duration)))
            maximum = config.line_duration_limit()
            if duration > maximum:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_line_duration_max',
                        duration=format_duration(duration),
                        maximum=format_duration(maximum)))
        check_values(cls, values, config.lengths('description'))

    @classmethod
    def preprocess_values(cls, mode, values):
        "Keep the request and the work of a line in step"
        pool = Pool()
        Request = pool.get('forfait.request')
        Work = pool.get('timesheet.work')
        cls.check_input(values)
        values = super().preprocess_values(mode, values)
        if values.get('work'):
            request = cls._request_of(Work(values['work']))
            values['forfait_request'] = request.id if request else None
        elif values.get('forfait_request'):
            request = Request(values['forfait_request'])
            values['work'] = request.timesheet_work.id
        return values

    @classmethod
    def validate_fields(cls, lines, field_names):
        super().validate_fields(lines, field_names)
        for line in lines:
            if line.forfait_request and line.duration <= ZERO:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_line_duration_positive',
                        line=line.rec_name))

    @classmethod
    def check_modification(cls, mode, lines, values=None, external=False):
        super().check_modification(
            mode, lines, values=values, external=external)
        Request = Pool().get('forfait.request')
        requests = {l.forfait_request for l in lines if l.forfait_request}
        if values and values.get('forfait_request'):
            requests.add(Request(values['forfait_request']))
        for request in requests:
            if request.state == 'done':
                raise LedgerAccessError(gettext(
                        'webservice_forfait.msg_line_request_done',
                        request=request.rec_name))
