"Outgoing e-mail kept until the SMTP server has accepted it"
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import make_msgid

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.sendmail import send_message
from trytond.transaction import Transaction, without_check_access
from trytond.url import host

from .exceptions import EmailConfigurationError


def message_id(data):
    "Return the Message-ID of raw data, reading the headers only"
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(data)
        return str(headers['Message-ID'] or '').strip() or None
    except Exception:
        return None


def email_message(
        sender, to, subject, body, in_reply_to=None, cc=None,
        auto='auto-replied'):
    "Return an EmailMessage from the agency, threaded when in_reply_to"
    if not sender:
        raise EmailConfigurationError(
            gettext('webservice_forfait.msg_email_sender_missing'))
    message = EmailMessage()
    message['From'] = sender
    message['To'] = to
    message['Subject'] = subject
    message['Message-ID'] = make_msgid(domain=host())
    if cc:
        message['Cc'] = cc
    message['Auto-Submitted'] = auto
    if in_reply_to:
        message['In-Reply-To'] = in_reply_to
        message['References'] = in_reply_to
    message.set_content(body)
    return message


class Outbox(ModelSQL, ModelView):
    __name__ = 'forfait.outbox'
    __string__ = "Forfait Outgoing E-mail"

    resource = fields.Reference(
        "Resource", selection='get_resources', readonly=True)
    recipients = fields.Char("Recipients", readonly=True)
    subject = fields.Char("Subject", readonly=True)
    message_id = fields.Char("Message-ID", readonly=True)
    data = fields.Binary("Message", readonly=True)
    state = fields.Selection([
            ('pending', "Pending"),
            ('sent', "Sent"),
            ], "State", readonly=True, required=True, sort=False)
    attempts = fields.Integer("Attempts", readonly=True)
    error = fields.Text("Last Error", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.state, Index.Equality(cardinality='low')),
                where=t.state == 'pending'))
        cls._order = [('id', 'DESC')]

    @classmethod
    def default_state(cls):
        return 'pending'

    @classmethod
    def default_attempts(cls):
        return 0

    @classmethod
    def get_resources(cls):
        IrModel = Pool().get('ir.model')
        return [(None, '')] + [
            (m, IrModel.get_name(m))
            for m in [
                'forfait.request', 'forfait.credit', 'inbound.email',
                'web.user', 'sale.subscription']]

    @classmethod
    def put(cls, message, resource=None):
        "Store message and send it once the transaction is committed"
        outbox = cls(
            resource=resource,
            recipients=', '.join(
                str(message[h]) for h in ['To', 'Cc', 'Bcc'] if message[h]),
            subject=str(message['Subject'] or ''),
            message_id=str(message['Message-ID'] or ''),
            data=message.as_bytes())
        with without_check_access():
            outbox.save()
        transaction = Transaction()
        transaction.atexit(
            cls._send_committed, transaction.database.name, outbox.id)
        return outbox

    @classmethod
    def _send_committed(cls, database_name, outbox_id):
        "Send once the storing transaction ended; nothing if rolled back"
        with Transaction(new=True).start(
                database_name, 0) as transaction:
            messages = cls.search([('id', '=', outbox_id)])
            cls.send(messages)
            transaction.commit()

    @classmethod
    def send(cls, messages):
        "Send pending messages; those the server refuses stay pending"
        for outbox in messages:
            if outbox.state != 'pending':
                continue
            message = message_from_bytes(outbox.data, policy=default_policy)
            try:
                send_message(message, strict=True)
            except Exception as exception:
                outbox.attempts += 1
                outbox.error = repr(exception)
            else:
                outbox.state = 'sent'
                outbox.error = None
        with without_check_access():
            cls.save(messages)

    @classmethod
    def send_pending(cls):
        "Cron: try again every message still pending"
        with Transaction().set_context(active_test=False):
            cls.send(cls.search([('state', '=', 'pending')]))


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('forfait.outbox|send_pending', "Send Pending Forfait E-mail"),
                ('inbound.email|forfait_fetch_mailboxes',
                    "Fetch Forfait Mailboxes"),
                ('forfait.credit|send_expiry_reminders',
                    "Send Forfait Expiry Reminders"),
                ('party.party|send_forfait_statements',
                    "Send Monthly Forfait Statements"),
                ('forfait.credit|expire', "Expire Forfait Credits"),
                ('sale.subscription|renew_forfait_credits',
                    "Renew Forfait Credits"),
                ])
