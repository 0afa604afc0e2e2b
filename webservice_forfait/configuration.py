import datetime

from trytond import config
from trytond.cache import Cache
from trytond.i18n import gettext
from trytond.model import ModelSingleton, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval, Id, TimeDelta

from .exceptions import ForfaitValidationError
from .ledger import round_duration
from .validation import check_values


class Configuration(ModelSingleton, ModelSQL, ModelView):
    __name__ = 'forfait.configuration'
    __string__ = "Forfait Configuration"
    _rounding_cache = Cache('forfait.configuration.rounding', context=False)

    request_sequence = fields.Many2One(
        'ir.sequence', "Request Sequence", required=True,
        domain=[
            ('sequence_type', '=',
                Id('webservice_forfait', 'sequence_type_request')),
            ],
        help="Numbers the update requests.")
    rounding_unit = fields.Selection([
            ('1', "1 min"),
            ('5', "5 min"),
            ('10', "10 min"),
            ('15', "15 min"),
            ('30', "30 min"),
            ('60', "60 min"),
            ], "Rounding Unit", required=True, sort=False,
        help="The billed time of a request is a multiple of this unit.")
    rounding_method = fields.Selection([
            ('up', "Up"),
            ('nearest', "Nearest"),
            ('down', "Down"),
            ], "Rounding Method", required=True, sort=False,
        help="How the total time of a request is rounded to the unit.")
    rounding_minimum = fields.TimeDelta(
        "Minimum per Request", 'forfait_hours', required=True,
        domain=[('rounding_minimum', '>=', TimeDelta())],
        help="The least time billed for a request with billable time.")
    overage_policy = fields.Selection([
            ('carry', "Carry to the next credit"),
            ('block', "Wait for a new credit"),
            ('invoice', "Invoice the overage"),
            ], "Overage Policy", required=True,
        help="What happens to billed time that no credit covers: carried "
        "to the client's next credit (and, with 'wait', requests of clients "
        "without available hours wait for a new credit), or invoiced at "
        "the overage product.")
    overage_product = fields.Many2One(
        'product.product', "Overage Product",
        domain=[('type', '=', 'service')],
        states={
            'required': Eval('overage_policy') == 'invoice',
            'invisible': Eval('overage_policy') != 'invoice',
            },
        help="The hourly service that bills the overage.")
    carry_over_max = fields.TimeDelta(
        "Carry-over", 'forfait_hours',
        domain=['OR',
            ('carry_over_max', '=', None),
            ('carry_over_max', '>=', TimeDelta())],
        help="At most how many hours left at the end of a contract year "
        "are added to the next year's credit of the same subscription.")

    email_sender = fields.Char(
        "Sender Address",
        help="The From of the e-mails sent to clients, "
        'e.g. "Web Service <update@webservice-mq.fr>".')
    inbound_address = fields.Char(
        "Inbound Address",
        help="The address clients write to, e.g. update@webservice-mq.fr.")
    inbound_inbox = fields.Many2One(
        'inbound.email.inbox', "Inbound Inbox",
        help="The inbox whose rules turn received e-mail into requests.")
    email_max_size = fields.Integer(
        "Maximum E-mail Size",
        domain=['OR',
            ('email_max_size', '=', None),
            ('email_max_size', '>', 0)],
        help="In bytes: a larger e-mail is refused and its sender told.")
    imap_host = fields.Char(
        "IMAP Server",
        help="Leave empty when e-mail is delivered to the inbox URL.")
    imap_port = fields.Integer("IMAP Port")
    imap_security = fields.Selection([
            ('ssl', "SSL/TLS"),
            ('starttls', "STARTTLS"),
            ('none', "None"),
            ], "IMAP Security", required=True)
    imap_user = fields.Char("IMAP User")
    imap_password = fields.Char("IMAP Password", strip=False)
    imap_folder = fields.Char("IMAP Folder")
    imap_processed_folder = fields.Char(
        "IMAP Processed Folder",
        help="Where fetched messages are moved; empty to leave them, "
        "flagged, in the folder.")

    notify_report = fields.Boolean(
        "Send Update Reports",
        help="E-mail the update report to the client when a request is done.")
    alert_thresholds = fields.Char(
        "Alert Thresholds",
        help="Percentages of a credit's hours whose crossing the client is "
        "told of, separated by commas; empty for no alert.")
    expiry_reminder_days = fields.Integer(
        "Expiry Reminder Days",
        domain=['OR',
            ('expiry_reminder_days', '=', None),
            ('expiry_reminder_days', '>', 0)],
        help="How many days before its end a credit with hours left is "
        "recalled to the client; empty for no reminder.")
    portal_url = fields.Char(
        "Portal URL",
        help="The address of the client portal, "
        "e.g. https://erp.example.com/DATABASE/portal; given in the e-mails.")
    portal_max_upload = fields.Integer(
        "Maximum Upload Size",
        domain=['OR',
            ('portal_max_upload', '=', None),
            ('portal_max_upload', '>', 0)],
        help="In bytes: the largest file a client may attach in the portal.")

    assignment_rule = fields.Selection([
            ('manager_round_robin',
                "Account manager, else round-robin among the staff"),
            ('manager', "Account manager"),
            ('round_robin', "Round-robin among the staff"),
            ('none', "Nobody"),
            ], "Assignment Rule", required=True, sort=False,
        help="Who a new request is assigned to: the client's account "
        "manager, or else in turn the users of the Forfait group who are "
        "employees of the company; or nobody.")
    notify_staff_email = fields.Boolean(
        "E-mail Staff on Client Messages",
        help="Besides the notification in Tryton, e-mail a client's message "
        "to the request's assignee (or the staff when unassigned).")

    @classmethod
    def default_assignment_rule(cls):
        return 'manager_round_robin'

    max_subject_length = fields.Integer(
        "Maximum Subject Length",
        domain=['OR',
            ('max_subject_length', '=', None),
            ('max_subject_length', '>', 0)],
        help="In characters: a longer request subject is refused "
        "(empty: 1,000).")
    max_description_length = fields.Integer(
        "Maximum Description Length",
        domain=['OR',
            ('max_description_length', '=', None),
            ('max_description_length', '>', 0)],
        help="In characters: a longer request or timesheet description is "
        "refused (empty: 100,000).")
    max_line_duration = fields.TimeDelta(
        "Maximum Duration per Line", 'forfait_hours',
        domain=['OR',
            ('max_line_duration', '=', None),
            ('max_line_duration', '>', TimeDelta())],
        help="The most time one timesheet line of a request may hold "
        "(empty: 24:00).")

    @classmethod
    def default_max_subject_length(cls):
        return 1000

    @classmethod
    def default_max_description_length(cls):
        return 100_000

    @classmethod
    def default_max_line_duration(cls):
        return datetime.timedelta(hours=24)

    def lengths(self, *names):
        "Return {field name: maximum length} of the texts; empty: default"
        limits = {
            'subject': (
                self.max_subject_length or self.default_max_subject_length()),
            'description': (
                self.max_description_length
                or self.default_max_description_length()),
            }
        return {n: limits[n] for n in names}

    def line_duration_limit(self):
        "Return the maximum duration of a timesheet line; empty: default"
        return self.max_line_duration or self.default_max_line_duration()

    @classmethod
    def default_notify_report(cls):
        return True

    @classmethod
    def default_alert_thresholds(cls):
        return '80, 100'

    @classmethod
    def default_expiry_reminder_days(cls):
        return 30

    @property
    def notify_expiry(self):
        return bool(self.expiry_reminder_days)

    def expiry_delay(self):
        return datetime.timedelta(days=self.expiry_reminder_days or 0)

    def thresholds(self):
        "Return the alert thresholds in increasing order"
        return sorted({
                int(t) for t in (self.alert_thresholds or '').replace(
                    ';', ',').split(',') if t.strip()})

    @classmethod
    def validate_fields(cls, configurations, field_names):
        super().validate_fields(configurations, field_names)
        for configuration in configurations:
            try:
                thresholds = configuration.thresholds()
            except ValueError:
                thresholds = None
            if thresholds is None or any(
                    not 0 < t <= 100 for t in thresholds):
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_alert_thresholds',
                        thresholds=configuration.alert_thresholds))

    @classmethod
    def default_email_max_size(cls):
        return 10_000_000

    @classmethod
    def default_portal_max_upload(cls):
        return 10_000_000

    @classmethod
    def default_imap_security(cls):
        return 'ssl'

    @classmethod
    def default_imap_port(cls):
        return 993

    @classmethod
    def default_imap_folder(cls):
        return 'INBOX'

    @classmethod
    def default_email_sender(cls):
        return config.get('email', 'from')

    @classmethod
    def default_request_sequence(cls):
        return Pool().get('ir.model.data').get_id(
            'webservice_forfait', 'sequence_request')

    @classmethod
    def default_rounding_unit(cls):
        return '15'

    @classmethod
    def default_rounding_method(cls):
        return 'up'

    @classmethod
    def default_rounding_minimum(cls):
        return datetime.timedelta(minutes=15)

    @classmethod
    def default_overage_policy(cls):
        return 'carry'

    @classmethod
    def get_rounding(cls):
        "Return (unit, method, minimum), cached between transactions"
        rounding = cls._rounding_cache.get(None)
        if rounding is None:
            config = cls(1)
            rounding = (
                config.rounding_unit, config.rounding_method,
                config.rounding_minimum)
            cls._rounding_cache.set(None, rounding)
        return rounding

    @classmethod
    def preprocess_values(cls, mode, values):
        "Refuse negative durations with their value as h:mm"
        check_values(cls, values)
        return super().preprocess_values(mode, values)

    @classmethod
    def create(cls, vlist):
        records = super().create(vlist)
        cls._rounding_cache.clear()
        return records

    @classmethod
    def write(cls, *args):
        super().write(*args)
        cls._rounding_cache.clear()

    @classmethod
    def delete(cls, records):
        super().delete(records)
        cls._rounding_cache.clear()

    def round(self, spent):
        "Return the time billed for spent billable time"
        return round_duration(
            spent, self.rounding_unit, self.rounding_method,
            self.rounding_minimum)
