"""The conversation of a request: who follows it, who answers it, and how
staff replies reach the client (through the outbox)"""
import json
from collections import defaultdict
from email.utils import formataddr, getaddresses, make_msgid, parseaddr

from sql.aggregate import Max

from trytond.bus import Bus
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields, sequence_ordered
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Bool, Eval, Id, If
from trytond.tools import firstline, grouped_slice
from trytond.transaction import Transaction, without_check_access
from trytond.url import host
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import ConversationError, ForfaitValidationError
from .ledger import format_duration
from .notification import client_addresses
from .outbox import email_message

# What the bus carries of a message: PostgreSQL's NOTIFY takes at most
# 8,000 bytes, and the clients reload the conversation on any message.
BUS_CONTENT_MAX = 500
PLACEHOLDERS = ['client', 'contact', 'number', 'subject', 'hours_left',
    'portal']
# the fields whose change changes who follows a request
FOLLOWED_FIELDS = {'party', 'contact', 'email_sender', 'assignee'}


def addresses_of(header):
    "The bare addresses of a To header"
    return [a for _, a in getaddresses([header or '']) if a]


class Channel(metaclass=PoolMeta):
    __name__ = 'ir.chat.channel'

    @classmethod
    def _forfait_request(cls, resource):
        "The request resource is, or None"
        Request = Pool().get('forfait.request')
        if isinstance(resource, Request):
            return resource
        if isinstance(resource, str) and resource.startswith(
                'forfait.request,'):
            return Request(int(resource.split(',', 1)[1]))

    @classmethod
    def post(cls, resource, content, audience='internal'):
        request = cls._forfait_request(resource)
        if request and audience == 'public':
            # refused before anything is stored
            request.check_public_message()
        return super().post(resource, content, audience=audience)

    @classmethod
    def _bus_message(cls, message):
        "The message as published on the bus: small whatever its length"
        values = message.as_dict()
        content = values.get('content') or ''
        if len(content) > BUS_CONTENT_MAX:
            values['content'] = content[:BUS_CONTENT_MAX]
            values['truncated'] = True
        return values

    @classmethod
    def dispatch_message(cls, message, is_sender):
        request = cls._forfait_request(message.channel.resource)
        if not request:
            with Transaction().set_context(_forfait_bus=True):
                return super().dispatch_message(message, is_sender)
        Bus.publish(
            f'chat:{str(request)}', {
                'type': 'message',
                'message': cls._bus_message(message),
                })
        if not Transaction().context.get('_notify', True):
            return
        request.message_dispatched(message, is_sender)


class Message(metaclass=PoolMeta):
    __name__ = 'ir.chat.message'

    def as_dict(self):
        values = super().as_dict()
        if Transaction().context.get('_forfait_bus'):
            content = values.get('content') or ''
            if len(content) > BUS_CONTENT_MAX:
                values['content'] = content[:BUS_CONTENT_MAX]
                values['truncated'] = True
        return values

    @property
    def from_client(self):
        "Whether the message was written by the client (e-mail or portal)"
        return bool(self.email) and not self.user

    @property
    def from_staff(self):
        return bool(self.user) and self.user.id != 0


class Outbox(metaclass=PoolMeta):
    __name__ = 'forfait.outbox'

    chat_message = fields.Many2One(
        'ir.chat.message', "Chat Message", readonly=True,
        ondelete='SET NULL',
        help="The message of the conversation the e-mail carries.")


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    assignee = fields.Many2One(
        'res.user', "Assignee",
        domain=[('groups', '=', Id('webservice_forfait', 'group_forfait'))],
        help="The staff member responsible for the request; "
        "they follow its conversation.")
    to_answer = fields.Boolean(
        "To Answer", readonly=True,
        help="A message of the client waits for an answer of the staff.")
    outbox_mails = fields.One2Many(
        'forfait.outbox', 'resource', "E-mails", readonly=True,
        help="The e-mails sent for the request and their delivery.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'dismiss': {
                    'invisible': ~Eval('to_answer', False),
                    'icon': 'tryton-ok',
                    'depends': ['to_answer'],
                    },
                'reply': {
                    'invisible': Eval('id', -1) < 0,
                    'icon': 'tryton-chat',
                    'depends': ['id'],
                    },
                })

    @classmethod
    def default_to_answer(cls):
        return False

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('/tree/field[@name="number"]', 'visual',
                If(Bool(Eval('to_answer')), 'warning', '')),
            ]

    # Followers

    def external_addresses(self):
        "The addresses that follow the request: its contact or the client's"
        addresses = set()
        if self.contact and self.contact.value:
            addresses.add(self.contact.value)
        elif self.party:
            addresses.update(addresses_of(client_addresses(self.party)))
        if self.email_sender:
            addresses.add(self.email_sender)
        return {a.lower() for a in addresses}

    @classmethod
    def sync_followers(cls, requests, old=None):
        """Make the external addresses and the assignee follow the requests;
        old maps request ids to (addresses, assignee) before a change"""
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        Follower = pool.get('ir.chat.follower')
        old = old or {}
        with without_check_access():
            for request in requests:
                channel = Channel._get_channel(request)
                addresses = request.external_addresses()
                old_addresses, old_assignee = old.get(
                    request.id, (set(), None))
                for address in old_addresses - addresses:
                    Follower.remove_email(channel, address)
                for address in sorted(addresses):
                    Follower.add_email(channel, address)
                if old_assignee and old_assignee != request.assignee:
                    Follower.remove_user(channel, old_assignee)
                if request.assignee:
                    Follower.add_user(channel, request.assignee)

    @classmethod
    def follow(cls, requests, users):
        "Make users follow the conversation of the requests"
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        Follower = pool.get('ir.chat.follower')
        with without_check_access():
            for request in requests:
                channel = Channel._get_channel(request)
                for user in users:
                    if user and user.id:
                        Follower.add_user(channel, user)

    # Assignment

    @classmethod
    def staff_users(cls, company_id):
        "The users of the Forfait group who are employees of the company"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        group = ModelData.get_id('webservice_forfait', 'group_forfait')
        with without_check_access():
            return User.search([
                    ('id', '!=', 0),
                    ('groups', '=', group),
                    ('employees.company', '=', company_id),
                    ], order=[('id', 'ASC')])

    @classmethod
    def round_robin(cls, company_id, count):
        """Return count users of the staff in turn: first those who were
        never assigned, then those assigned the longest ago"""
        staff = cls.staff_users(company_id) if company_id else []
        if not staff:
            return [None] * count
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        last = {}
        for sub_ids in grouped_slice([u.id for u in staff]):
            cursor.execute(*table.select(
                    table.assignee, Max(table.id),
                    where=table.assignee.in_(list(sub_ids)),
                    group_by=[table.assignee]))
            last.update(cursor)
        order = sorted(staff, key=lambda u: (last.get(u.id, 0), u.id))
        return [order[i % len(order)] for i in range(count)]

    @classmethod
    def auto_assign(cls, vlist):
        "Fill the assignee of the values by the configured rule"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Party = pool.get('party.party')
        rule = Config(1).assignment_rule or 'none'
        if rule == 'none':
            return
        pending = defaultdict(list)
        for values in vlist:
            if values.get('assignee'):
                continue
            manager = None
            if values.get('party') and rule in {
                    'manager', 'manager_round_robin'}:
                manager = Party(values['party']).forfait_manager
            if manager and manager.active:
                values['assignee'] = manager.id
            elif rule in {'round_robin', 'manager_round_robin'}:
                company = values.get('company') or cls.default_company()
                pending[company].append(values)
        for company, values_list in pending.items():
            users = cls.round_robin(company, len(values_list))
            for values, user in zip(values_list, users):
                values['assignee'] = user.id if user else None

    @classmethod
    def create(cls, vlist):
        vlist = [v.copy() for v in vlist]
        for values in vlist:
            if values.get('channel') in {'email', 'portal'}:
                # a new request of the client waits for an answer
                values.setdefault('to_answer', True)
        cls.auto_assign(vlist)
        requests = super().create(vlist)
        cls.sync_followers(requests)
        cls.notify_staff([r for r in requests if r.to_answer])
        return requests

    @classmethod
    def copy(cls, requests, default=None):
        default = default.copy() if default is not None else {}
        default.setdefault('to_answer', False)
        default.setdefault('outbox_mails')
        return super().copy(requests, default=default)

    @classmethod
    def on_write(cls, records, values):
        callbacks = super().on_write(records, values)
        if FOLLOWED_FIELDS & set(values):
            old = {
                r.id: (r.external_addresses(), r.assignee) for r in records}
            ids = [r.id for r in records]

            def sync():
                cls.sync_followers(cls.browse(ids), old)
            callbacks.append(sync)
        return callbacks

    # Public messages

    def check_public_message(self):
        "Raise when a public message could not be e-mailed to the client"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        if not Config(1).email_sender:
            raise ConversationError(gettext(
                    'webservice_forfait.msg_conversation_sender_missing'))
        if not self.external_addresses():
            raise ConversationError(gettext(
                    'webservice_forfait.msg_conversation_no_recipient',
                    request=self.rec_name))

    def reply_to_address(self, channel):
        "The address the client's replies come back to this conversation"
        config = Pool().get('forfait.configuration')(1)
        base = parseaddr(config.inbound_address or config.email_sender)[1]
        if '@' not in base:
            return None
        local, domain = base.split('@', 1)
        local = local.split('+', 1)[0]
        return '%s+%s@%s' % (local, channel.identifier, domain)

    def message_dispatched(self, message, is_sender):
        """Tell the followers about message: staff users by a notification,
        the client by an e-mail through the outbox for public messages"""
        if message.from_staff:
            self.follow([self], [message.user])
        users = {
            f.user for f in message.channel.followers
            if f.user and f.user.id and not is_sender(f.user)}
        if message.from_client:
            with without_check_access():
                self.to_answer = True
                self.save()
            users |= set(self.responsible_users())
        elif message.from_staff and message.audience == 'public' and (
                self.to_answer):
            with without_check_access():
                self.to_answer = False
                self.save()
        for user in sorted(users, key=lambda u: u.id):
            self.notify_user(user, message)
        if message.from_client:
            self.email_staff(users, message)
        if message.audience == 'public' and not message.from_client:
            # a client's message is not copied to the client's other
            # addresses: the staff answer them all
            recipients = sorted(
                f.email for f in message.channel.followers
                if f.email and not is_sender(f.email))
            if recipients:
                self.email_message(message, recipients)

    def email_message(self, message, recipients):
        "Queue in the outbox the e-mail of a public message to recipients"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        Channel = pool.get('ir.chat.channel')
        config = Config(1)
        channel = message.channel
        with Transaction().set_context(language=self.chat_language()):
            subject = gettext(
                'webservice_forfait.msg_conversation_subject',
                number=self.number, subject=self.subject)
            body = Channel._email_body(message)
        if not config.email_sender:
            raise ConversationError(gettext(
                    'webservice_forfait.msg_conversation_sender_missing'))
        try:
            mail = email_message(
                config.email_sender, ', '.join(recipients), subject, body,
                in_reply_to=self.email_message_id, auto='no')
            if reply_to := self.reply_to_address(channel):
                mail['Reply-To'] = reply_to
                mail['List-Post'] = '<mailto:%s>' % reply_to
            mail['List-Id'] = formataddr(
                (self.rec_name, 'channel-%s@%s' % (channel.id, host())),
                'utf-8')
            mail.replace_header('Message-ID', make_msgid(domain=host()))
        except (ValueError, TypeError, IndexError) as exception:
            raise ConversationError(gettext(
                    'webservice_forfait.msg_conversation_email_invalid',
                    error=str(exception))) from exception
        message.reference = str(mail['Message-ID'])
        with without_check_access():
            message.save()
            outbox = Outbox.put(mail, resource=self)
            outbox.chat_message = message
            outbox.save()
        return outbox

    # To answer

    def responsible_users(self):
        "The assignee, or the staff when nobody is"
        if self.assignee:
            return [self.assignee]
        return self.staff_users(self.company.id) if self.company else []

    def notify_user(self, user, message=None, label=None):
        "Leave user a Tryton notification that opens the request"
        Notification = Pool().get('res.notification')
        with without_check_access():
            Notification(
                user=user,
                label=label or (message.author if message else self.rec_name),
                description=firstline(
                    message.content if message else self.subject or '')[:200],
                icon='tryton-chat',
                model=self.__name__,
                records=json.dumps([self.id])).save()

    @classmethod
    def notify_staff(cls, requests):
        "Tell the responsible users about new requests of clients"
        for request in requests:
            for user in request.responsible_users():
                language = user.language.code if user.language else 'fr'
                with Transaction().set_context(language=language):
                    label = gettext(
                        'webservice_forfait.msg_conversation_new_request',
                        request=request.rec_name)
                request.notify_user(user, label=label)

    def email_staff(self, users, message):
        "E-mail the client's message to the staff users when configured"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        config = Config(1)
        if not config.notify_staff_email or not config.email_sender:
            return
        for user in sorted(users, key=lambda u: u.id):
            if not user.email:
                continue
            language = user.language.code if user.language else 'fr'
            with Transaction().set_context(language=language):
                subject = gettext(
                    'webservice_forfait.msg_conversation_staff_subject',
                    number=self.number, subject=self.subject)
                body = gettext(
                    'webservice_forfait.msg_conversation_staff_body',
                    author=message.author, request=self.rec_name,
                    content=message.content)
            with without_check_access():
                Outbox.put(email_message(
                        config.email_sender, user.email, subject, body,
                        auto='auto-generated'), resource=self)

    @classmethod
    @ModelView.button
    def dismiss(cls, requests):
        "Mark the client's messages as answered without replying"
        cls.write([r for r in requests if r.to_answer], {'to_answer': False})

    @classmethod
    @ModelView.button_action('webservice_forfait.wizard_request_reply')
    def reply(cls, requests):
        pass

    # Quick replies

    def reply_values(self):
        "The values of the placeholders of the reply templates"
        config = Pool().get('forfait.configuration')(1)
        contact = ''
        if self.contact:
            contact = self.contact.name or (
                self.party.name if self.party else self.contact.value)
        elif self.party:
            contact = self.party.name
        return {
            'client': self.party.name if self.party else '',
            'contact': contact,
            'number': self.number or '',
            'subject': self.subject or '',
            'hours_left': (
                format_duration(self.party.forfait_available)
                if self.party else ''),
            'portal': config.portal_url or '',
            }


class Line(metaclass=PoolMeta):
    __name__ = 'timesheet.line'

    @classmethod
    def create(cls, vlist):
        pool = Pool()
        Request = pool.get('forfait.request')
        User = pool.get('res.user')
        lines = super().create(vlist)
        by_request = defaultdict(set)
        for line in lines:
            if line.forfait_request and line.employee:
                by_request[line.forfait_request].add(line.employee.id)
        if by_request:
            employees = set().union(*by_request.values())
            with without_check_access():
                users = User.search([('employees', 'in', list(employees))])
            users_of = defaultdict(set)
            for user in users:
                for employee in user.employees:
                    users_of[employee.id].add(user)
            for request, employee_ids in by_request.items():
                Request.follow([request], set().union(
                        *(users_of[e] for e in employee_ids)))
        return lines


class ReplyTemplate(sequence_ordered(), ModelSQL, ModelView):
    __name__ = 'forfait.reply.template'
    __string__ = "Reply Template"

    name = fields.Char("Name", required=True, translate=True)
    content = fields.Text(
        "Content", required=True, translate=True,
        help="The text of the reply; {client}, {contact}, {number}, "
        "{subject}, {hours_left} and {portal} are replaced by the request's "
        "values.")
    active = fields.Boolean("Active")

    @classmethod
    def default_active(cls):
        return True

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        if field_names and 'content' not in field_names:
            return
        for template in templates:
            try:
                template.render(dict.fromkeys(PLACEHOLDERS, ''))
            except (KeyError, ValueError, IndexError, AttributeError):
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_reply_template_placeholder',
                        template=template.name,
                        field=cls.content.string,
                        placeholders=', '.join(
                            '{%s}' % p for p in PLACEHOLDERS)))

    def render(self, values):
        return (self.content or '').format_map(values)


class RequestReply(Wizard):
    __name__ = 'forfait.request.reply'
    start = StateView(
        'forfait.request.reply.start',
        'webservice_forfait.request_reply_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Send", 'send', 'tryton-ok', default=True),
            ])
    send = StateTransition()

    def default_start(self, fields):
        return {
            'request': self.record.id,
            'internal': False,
            }

    def transition_send(self):
        Channel = Pool().get('ir.chat.channel')
        Channel.post(
            self.record, self.start.content,
            audience='internal' if self.start.internal else 'public')
        return 'end'


class RequestReplyStart(ModelView):
    __name__ = 'forfait.request.reply.start'
    __string__ = "Reply to the Client"

    request = fields.Many2One(
        'forfait.request', "Request", readonly=True)
    template = fields.Many2One(
        'forfait.reply.template', "Template",
        help="A reply to start from; the text stays editable.")
    content = fields.Text("Message", required=True)
    internal = fields.Boolean(
        "Internal Note",
        help="Keep the message for the staff: the client does not get it.")

    @fields.depends('template', 'request', 'content')
    def on_change_template(self):
        Template = Pool().get('forfait.reply.template')
        if not self.template or not self.request:
            return
        with Transaction().set_context(
                language=self.request.chat_language()):
            template = Template(self.template.id)
            self.content = template.render(self.request.reply_values())
