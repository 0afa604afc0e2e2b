"Outgoing e-mail kept until the SMTP server has accepted it"
import datetime as dt
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid

from trytond import backend, config
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.sendmail import send_message
from trytond.transaction import Transaction, without_check_access
from trytond.url import host

from .exceptions import EmailConfigurationError


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
            ('sending', "Sending"),
            ('sent', "Sent"),
            ], "State", readonly=True, required=True, sort=False)
    attempts = fields.Integer(
        "Attempts", readonly=True,
        help="How many times the SMTP server refused or could not be "
        "reached.")
    error = fields.Text("Last Error", readonly=True)
    claimed_at = fields.Timestamp(
        "Claimed at", readonly=True,
        help="When a process took the message to send it (UTC).")
    sent_at = fields.Timestamp(
        "Sent at", readonly=True,
        help="When the SMTP server accepted the message (UTC).")

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

    @staticmethod
    def _now():
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    @classmethod
    def claim_timeout(cls):
        "How long a message may stay claimed before it is sent again"
        return dt.timedelta(seconds=config.getint(
                'forfait', 'outbox_claim_timeout', default=600))

    @classmethod
    @contextmanager
    def _own_transaction(cls):
        """Run the block in a transaction committed at its end, so that
        other processes see it at once; an in-memory database has only
        one connection: the current transaction is used"""
        transaction = Transaction()
        if transaction.database.name == ':memory:':
            yield transaction
            return
        with transaction.new_transaction() as new:
            try:
                yield new
            except Exception:
                new.rollback()
                raise
            new.commit()

    @classmethod
    def _update(cls, outbox_id, columns, values, where=None):
        "Update outbox_id in a committed transaction; tell if it matched"
        table = cls.__table__()
        condition = table.id == outbox_id
        if where is not None:
            condition &= where(table)
        with cls._own_transaction() as transaction:
            cursor = transaction.connection.cursor()
            cursor.execute(*table.update(
                    [getattr(table, c) for c in columns],
                    [v(table) if callable(v) else v for v in values],
                    where=condition))
            return cursor.rowcount == 1

    @classmethod
    def _claim(cls, outbox_id):
        """Take a pending message for this process, committed before it is
        sent: a concurrent run skips it"""
        table = cls.__table__()
        candidate = cls.__table__()
        try:
            with cls._own_transaction() as transaction:
                database = transaction.database
                query = candidate.select(candidate.id,
                    where=(candidate.id == outbox_id)
                    & (candidate.state == 'pending'))
                if database.has_select_for():
                    For = database.get_select_for_skip_locked()
                    query.for_ = For('UPDATE')
                cursor = transaction.connection.cursor()
                cursor.execute(*table.update(
                        [table.state, table.claimed_at],
                        ['sending', cls._now()],
                        where=table.id.in_(query)
                        & (table.state == 'pending')))
                return cursor.rowcount == 1
        except backend.DatabaseOperationalError:
            # claimed by a run that committed after this snapshot began
            return False

    @classmethod
    def send(cls, messages):
        """Send the pending messages, each claimed by a committed
        transaction before and marked sent by another as soon as the SMTP
        server accepted it; those it refuses stay pending

        The records given are not updated: read them again."""
        for outbox in messages:
            # the claim, not the caller's snapshot, tells what is pending
            if not cls._claim(outbox.id):
                continue
            message = message_from_bytes(outbox.data, policy=default_policy)
            try:
                send_message(message, strict=True)
            except Exception as exception:
                cls._update(outbox.id,
                    ['state', 'claimed_at', 'attempts', 'error'],
                    ['pending', None, lambda t: t.attempts + 1,
                        repr(exception)])
            else:
                cls._update(outbox.id,
                    ['state', 'sent_at', 'error'],
                    ['sent', cls._now(), None])

    @classmethod
    def release_stale(cls):
        """Put back as pending the messages claimed by a process that did
        not finish (killed, connection lost); return their ids"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.id,
                where=(table.state == 'sending')
                & (table.claimed_at < cls._now() - cls.claim_timeout())))
        ids = [i for i, in cursor]
        error = gettext('webservice_forfait.msg_outbox_interrupted')
        released = []
        for outbox_id in ids:
            if cls._update(outbox_id, ['state', 'claimed_at', 'error'],
                    ['pending', None, error],
                    where=lambda t: t.state == 'sending'):
                released.append(outbox_id)
        return released

    @classmethod
    def send_pending(cls):
        "Cron: try again every message still pending or left claimed"
        released = cls.release_stale()
        with Transaction().set_context(active_test=False):
            messages = cls.search([('state', '=', 'pending')])
        # released by committed transactions this snapshot may not see
        cls.send(messages + cls.browse(
                sorted(set(released) - {m.id for m in messages})))


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
