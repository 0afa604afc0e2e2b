"The e-mail channel: received mail becomes requests or conversation"
import traceback
from email.utils import formataddr

from sql.functions import Lower

from trytond.i18n import gettext
from trytond.model import Index, ModelView, fields
from trytond.modules.inbound_email.ir import DESTINATION_RE
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access

from .mail import parse
from .notification import figures_for
from .outbox import email_message, message_id


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
        states={'invisible': Eval('forfait_state') != 'error'})
    forfait_message_id = fields.Char("Message-ID", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(
            Index(t, (t.forfait_message_id, Index.Equality())))
        cls._buttons.update(
            forfait_retry={
                'invisible': ~Eval('forfait_state').in_(['error', 'received']),
                'depends': ['forfait_state'],
                })

    @classmethod
    def forfait_receive(cls, email_, rule):
        "Rule action: keep the message, then process it in its own task"
        email_.forfait_state = 'received'
        email_.forfait_message_id = message_id(email_.data)
        email_.save()
        cls.__queue__.forfait_process([email_])

    @classmethod
    @ModelView.button
    def forfait_retry(cls, emails):
        for email_ in emails:
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
            try:
                with transaction.set_context(company=company):
                    result, state = email_._forfait_handle()
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

    def _forfait_handle(self):
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Request = pool.get('forfait.request')
        config = Config(1)
        mail = parse(self.data)
        self.forfait_message_id = mail.message_id
        if mail.message_id and self.search([
                    ('forfait_message_id', '=', mail.message_id),
                    ('id', '!=', self.id),
                    ('forfait_state', 'in',
                        ['processed', 'ignored', 'rejected']),
                    ], limit=1):
            return None, 'duplicate'
        if mail.automatic:
            return None, 'ignored'
        if config.email_max_size and len(self.data) > config.email_max_size:
            if mail.sender:
                Request.send_size_notice(mail, config)
            return None, 'rejected'
        parties = Request.parties_by_email(mail.sender)
        party = parties[0] if len(parties) == 1 else None
        request = Request.thread_of(mail)
        if request and party and request.party == party:
            request.append_email(mail)
            return request, 'processed'
        request = Request.create_from_email(mail, party)
        return request, 'processed'

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
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        contact = None
        if party:
            contacts = [
                c for c in party.contact_mechanisms
                if c.type == 'email' and c.value.lower() == mail.sender]
            contact = contacts[0] if contacts else None
        request = cls(
            party=party, contact=contact, channel='email',
            subject=(mail.subject or gettext(
                    'webservice_forfait.msg_email_no_subject'))[:250],
            description=mail.text, email_sender=mail.sender,
            email_message_id=None)
        with without_check_access():
            request.save()
        request.attach_files(mail.attachments)
        if party and mail.sender:
            with without_check_access():
                Channel.subscribe_email(request, mail.sender)
        if mail.sender:
            request.acknowledge(
                mail.sender, mail.sender_name, in_reply_to=mail.message_id)
        return request

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
            config.email_sender, formataddr((name, address)), subject, body,
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
