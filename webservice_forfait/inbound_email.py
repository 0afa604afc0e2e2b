"The e-mail channel: received mail becomes requests or conversation"
import traceback
from email.utils import formataddr, quote

from sql import Null
from sql.aggregate import Min
from sql.functions import Lower

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelView, Unique, fields
from trytond.modules.inbound_email.ir import DESTINATION_RE
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .mail import as_dict, headers, headers_size, parse
from .notification import figures_for
from .outbox import email_message

# above it the strict header registry of inbound_email is not linear
STRICT_HEADERS_SIZE = 64_000


class Rule(metaclass=PoolMeta):
    __name__ = 'inbound.email.rule'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.action.selection.append(
            ('inbound.email|forfait_receive', "Forfait Update Request"))


class Email(metaclass=PoolMeta):
    __name__ = 'inbound.email'

    forfait_state = fields.Selection([
            (None, ""),
            ('received', "Received"),
            ('processed', "Processed"),
            ('ignored', "Ignored"),
            ('duplicate', "Duplicate"),
            ('rejected', "Rejected"),
            ('error', "Error"),
            ], "Forfait State", readonly=True, sort=False,
        help="What the forfait e-mail channel did with the message.")
    forfait_error = fields.Text(
        "Forfait Error", readonly=True,
        states={'invisible': ~Eval('forfait_error')},
        help="Why the processing failed, or what could not be done "
        "around a processed message (the acknowledgement).")
    forfait_message_id = fields.Char("Message-ID", readonly=True)
    forfait_message_claim = fields.Char(
        "Message-ID Claimed", readonly=True,
        help="The Message-ID of the one message of the inbox processed "
        "for it: unique, so a second delivery is a duplicate whatever "
        "the timing.")
    forfait_sender = fields.Char("Sender", readonly=True)
    forfait_subject = fields.Char("Subject", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.forfait_message_id, Index.Equality())))
        cls._sql_constraints += [
            ('forfait_message_claim_unique',
                Unique(t, t.inbox, t.forfait_message_claim),
                'webservice_forfait.msg_email_message_claim_unique'),
            ]
        cls._buttons.update(
            forfait_retry={
                'invisible': ~Eval('forfait_state').in_(['error', 'received'])
                & ~((Eval('forfait_state') == 'processed')
                    & Eval('forfait_error')),
                'depends': ['forfait_state', 'forfait_error'],
                })

    @classmethod
    def __register__(cls, module):
        table_h = cls.__table_handler__(module)
        claims = not table_h.column_exist('forfait_message_claim')
        super().__register__(module)
        if claims:
            # the messages processed before claims existed claim their id
            table = cls.__table__()
            first = cls.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.update(
                    [table.forfait_message_claim],
                    [table.forfait_message_id],
                    where=table.id.in_(first.select(
                            Min(first.id),
                            where=first.forfait_state.in_(
                                ['processed', 'ignored', 'rejected'])
                            & (first.forfait_message_id != Null),
                            group_by=[first.inbox, first.forfait_message_id]
                            ))))

    def _as_dict(self, raw):
        """What the rules match on: read leniently when the strict header
        registry would raise or take too long, so that matching never
        prevents the message from being stored"""
        data = raw.encode('utf-8', 'surrogateescape') if isinstance(
            raw, str) else (raw or b'')
        if headers_size(data) <= STRICT_HEADERS_SIZE:
            try:
                return super()._as_dict(raw)
            except Exception:
                pass
        return as_dict(data)

    @classmethod
    def forfait_receive(cls, email_, rule):
        "Rule action: keep the message, then process it in its own task"
        email_.forfait_state = 'received'
        head = headers(email_.data)
        email_.forfait_message_id = head.message_id
        email_.forfait_sender = head.sender
        email_.forfait_subject = head.subject[:250]
        email_.save()
        cls.__queue__.forfait_process([email_])

    @classmethod
    @ModelView.button
    def forfait_retry(cls, emails):
        "Process again, or only follow up a processed message that failed to"
        for email_ in emails:
            if email_.forfait_state == 'processed':
                if email_.forfait_error:
                    cls.__queue__.forfait_follow_up([email_])
            else:
                cls.__queue__.forfait_process([email_])

    @classmethod
    def forfait_process(cls, emails):
        """Turn each message into a request or a conversation message

        A failure rolls back the task and keeps the message in the error
        state with the reason, for staff to retry: so each task carries one
        message.
        """
        pool = Pool()
        Company = pool.get('company.company')
        transaction = Transaction()
        company = transaction.context.get('company')
        if not company:
            # mail comes in through a route or a cron, outside any session
            companies = Company.search([], order=[('id', 'ASC')], limit=1)
            company = companies[0].id if companies else None
        for email_ in emails:
            follow_up = False
            try:
                with transaction.set_context(company=company):
                    result, state, follow_up = email_._forfait_handle()
            except Exception:
                transaction.rollback()
                email_ = cls(email_.id)
                result, state = None, 'error'
                email_.forfait_error = traceback.format_exc(limit=5)
            else:
                email_.forfait_error = None
            email_.forfait_state = state
            if result:
                email_.result = result
            email_.save()
            if follow_up:
                cls.__queue__.forfait_follow_up([email_])

    def _forfait_claim(self, message_id):
        """Claim message_id for this message; False when another message
        of the inbox holds it (the unique index decides, whatever the
        timing: a concurrent claim waits for the first to end)"""
        table = self.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute('SAVEPOINT forfait_claim')
        try:
            cursor.execute(*table.update(
                    [table.forfait_message_claim], [message_id],
                    where=table.id == self.id))
        except backend.DatabaseIntegrityError:
            cursor.execute('ROLLBACK TO SAVEPOINT forfait_claim')
            return False
        cursor.execute('RELEASE SAVEPOINT forfait_claim')
        return True

    def _forfait_handle(self):
        """Return the request, the final state and whether the request is
        new (its acknowledgement and follower then come in a task)"""
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Request = pool.get('forfait.request')
        config = Config(1)
        mail = parse(self.data)
        self.forfait_message_id = mail.message_id
        if mail.message_id and (self.search([
                        ('forfait_message_id', '=', mail.message_id),
                        ('inbox', '=', self.inbox.id),
                        ('id', '!=', self.id),
                        ('forfait_state', 'in',
                            ['processed', 'ignored', 'rejected']),
                        ], limit=1)
                or not self._forfait_claim(mail.message_id)):
            return None, 'duplicate', False
        if mail.automatic:
            return None, 'ignored', False
        if config.email_max_size and len(self.data) > config.email_max_size:
            if mail.sender:
                Request.send_size_notice(mail, config)
            return None, 'rejected', False
        parties = Request.parties_by_email(mail.sender)
        party = parties[0] if len(parties) == 1 else None
        request = Request.thread_of(mail)
        if request and party and request.party == party:
            request.append_email(mail)
            return request, 'processed', False
        request = Request.create_from_email(mail, party)
        return request, 'processed', bool(mail.sender)

    @classmethod
    def forfait_follow_up(cls, emails):
        """Subscribe the sender of a new request and acknowledge it: a
        failure is noted on the message and never undoes the request"""
        transaction = Transaction()
        for email_ in emails:
            request = email_.result
            if not request or request.__name__ != 'forfait.request':
                continue
            head = headers(email_.data)
            if not head.sender:
                continue
            try:
                with transaction.set_context(company=request.company.id):
                    request.follow_up(
                        head.sender, head.sender_name, head.message_id)
                if email_.forfait_error:
                    email_.forfait_error = None
                    email_.save()
            except Exception as exception:
                transaction.rollback()
                email_ = cls(email_.id)
                email_.forfait_error = gettext(
                    'webservice_forfait.msg_email_follow_up_failed',
                    error=str(exception) or repr(exception))
                email_.save()

    @classmethod
    def forfait_fetch_mailboxes(cls):
        "Cron: fetch the configured IMAP mailbox into the forfait inbox"
        from . import imap
        pool = Pool()
        Config = pool.get('forfait.configuration')
        config = Config(1)
        if not config.imap_host or not config.inbound_inbox:
            return
        inbox = config.inbound_inbox
        transaction = Transaction()

        def handle(raw):
            # stored and committed before the server flags it as fetched
            email_ = cls(inbox=inbox, data=raw, data_type='raw')
            inbox.process(email_)
            email_.save()
            transaction.commit()
        return imap.fetch(
            config.imap_host, config.imap_port, config.imap_security,
            config.imap_user, config.imap_password,
            config.imap_folder or 'INBOX', handle,
            processed_folder=config.imap_processed_folder)


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    @classmethod
    def parties_by_email(cls, address):
        "Return the distinct parties with address as an e-mail contact"
        pool = Pool()
        ContactMechanism = pool.get('party.contact_mechanism')
        if not address:
            return []
        mechanism = ContactMechanism.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*mechanism.select(
                mechanism.party,
                where=(mechanism.type == 'email')
                & (Lower(mechanism.value) == address.lower())
                & (mechanism.active == True),  # noqa: E712
                group_by=[mechanism.party]))
        Party = pool.get('party.party')
        return Party.browse([p for p, in cursor])

    @classmethod
    def thread_of(cls, mail):
        """Return the request a reply belongs to: by the conversation
        address it answers, the number in its subject or its Message-IDs"""
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        Message = pool.get('ir.chat.message')
        for address in mail.recipients:
            if match := DESTINATION_RE.match(address):
                channels = Channel.search(
                    [('identifier', '=', match.group(1))], limit=1)
                if channels and isinstance(channels[0].resource, cls):
                    return channels[0].resource
        if mail.numbers:
            requests = cls.search([('number', 'in', mail.numbers)], limit=1)
            if requests:
                return requests[0]
        if mail.references:
            requests = cls.search(
                [('email_message_id', 'in', mail.references)], limit=1)
            if requests:
                return requests[0]
            messages = Message.search([
                    ('reference', 'in', mail.references),
                    ('channel.resource', 'like', 'forfait.request,%'),
                    ], limit=1)
            if messages:
                return messages[0].channel.resource

    def append_email(self, mail):
        "Add a reply of the client to the request's conversation"
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        Message = pool.get('ir.chat.message')
        with without_check_access():
            channel = Channel._get_channel(self)
            message = Message(
                channel=channel, email=mail.sender, audience='public',
                content=mail.text or mail.subject or '-',
                reference=mail.message_id)
            message.save()
        Channel.dispatch_message(message, lambda u: u == mail.sender)
        self.attach_files(mail.attachments)

    def attach_files(self, files):
        Attachment = Pool().get('ir.attachment')
        with without_check_access():
            Attachment.save([
                    Attachment(
                        resource=self, name=name, type='data', data=data)
                    for name, _, data in files])

    @classmethod
    def create_from_email(cls, mail, party):
        "Create a request from a received mail; triage when no party"
        contact = None
        if party:
            contacts = [
                c for c in party.contact_mechanisms
                if c.type == 'email' and c.value.lower() == mail.sender]
            contact = contacts[0] if contacts else None
        description = mail.text
        if not description and mail.attachments:
            # a message that is only a file: its name, never its bytes
            description = gettext(
                'webservice_forfait.msg_email_files_only',
                files=', '.join(n for n, _, _ in mail.attachments))
        request = cls(
            party=party, contact=contact, channel='email',
            subject=(mail.subject or gettext(
                    'webservice_forfait.msg_email_no_subject'))[:250],
            description=description, email_sender=mail.sender,
            email_message_id=None)
        with without_check_access():
            request.save()
        request.attach_files(mail.attachments)
        return request

    def follow_up(self, sender, name=None, in_reply_to=None):
        "Subscribe the sender of a new request, then acknowledge it once"
        Channel = Pool().get('ir.chat.channel')
        if self.party:
            with without_check_access():
                Channel.subscribe_email(self, sender)
        if not self.email_message_id:
            self.acknowledge(sender, name, in_reply_to=in_reply_to)

    def acknowledge(self, address, name=None, in_reply_to=None):
        "Send the acknowledgement with the number and the hours available"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        config = Config(1)
        language = self.chat_language()
        with Transaction().set_context(language=language):
            subject = gettext(
                'webservice_forfait.msg_ack_subject',
                number=self.number, subject=self.subject)
            if self.party:
                body = gettext(
                    'webservice_forfait.msg_ack_body',
                    number=self.number, subject=self.subject,
                    figures=figures_for(self.party, self.company))
            else:
                body = gettext(
                    'webservice_forfait.msg_ack_body_unknown',
                    number=self.number, subject=self.subject)
        message = email_message(
            config.email_sender, _recipient(name, address), subject, body,
            in_reply_to=in_reply_to)
        self.email_message_id = str(message['Message-ID'])
        self.save()
        Outbox.put(message, resource=self)

    @classmethod
    def send_size_notice(cls, mail, config):
        pool = Pool()
        Outbox = pool.get('forfait.outbox')
        subject = gettext(
            'webservice_forfait.msg_size_subject', subject=mail.subject)
        body = gettext(
            'webservice_forfait.msg_size_body', subject=mail.subject,
            size='%s' % (config.email_max_size // 1_000_000))
        Outbox.put(email_message(
                config.email_sender, mail.sender, subject, body,
                in_reply_to=mail.message_id))

    def chat_language(self, audience='internal'):
        if self.party and self.party.lang:
            return self.party.lang.code
        return 'fr'


def _recipient(name, address):
    """Return the To header of name and address; an international address
    (RFC 6532) is written as is, formataddr() cannot encode it"""
    name = ' '.join((name or '').split())
    try:
        return formataddr((name, address))
    except UnicodeError:
        return '"%s" <%s>' % (quote(name), address) if name else address
