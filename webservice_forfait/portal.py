"""What the client portal does to the records: portal accounts and their
invitations, requests and messages sent from the portal, subscriptions asked
for there. The pages themselves are in portal_routes."""
import datetime
import logging
import secrets
import urllib.parse
from email.utils import formataddr

from trytond.config import config
from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import PortalError
from .notification import client_addresses, translated
from .outbox import email_message

INVITATION_VALIDITY = datetime.timedelta(days=7)
logger = logging.getLogger(__name__)
_dummy_hash = []


def portal_link(path, **query):
    "Return the absolute URL of a portal page, or raise when not configured"
    Config = Pool().get('forfait.configuration')
    base = Config(1).portal_url
    if not base:
        raise PortalError(
            gettext('webservice_forfait.msg_portal_url_missing'))
    url = base.rstrip('/') + '/' + path
    if query:
        url += '?' + urllib.parse.urlencode(query)
    return url


class WebUser(metaclass=PoolMeta):
    __name__ = 'web.user'

    @classmethod
    def portal_locked(cls, email):
        """Tell whether logins of email (or from this IP network) are refused:
        after [session] max_attempt failures within [session] timeout"""
        Attempt = Pool().get('web.user.authenticate.attempt')
        return (
            Attempt.count_ip() > config.getint(
                'session', 'max_attempt_ip_network', default=300)
            or Attempt.count(email) > config.getint(
                'session', 'max_attempt', default=5))

    @classmethod
    def portal_authenticate(cls, email, password):
        """Return the user of email and password, or None

        As web.user's authenticate, without sleeping in the worker: while
        the address or the IP network is locked, attempts are refused at
        once and not counted, so the lock ends at most [session] timeout
        after the last wrong password. An unknown address checks a hash as
        well, so that it takes the time a real one takes."""
        Attempt = Pool().get('web.user.authenticate.attempt')
        email = email.lower()
        if cls.portal_locked(email):
            raise RateLimitException()
        users = cls.search([('email', '=', email)], limit=1)
        hash_ = users[0].password_hash if users else None
        valid, new_hash = cls.check_password(
            password, hash_ or cls._dummy_password_hash())
        if valid and hash_:
            user, = users
            if new_hash:
                logger.info("Update password hash for %s", user.id)
                with without_check_access():
                    cls.write([user], {'password_hash': new_hash})
            Attempt.remove(email)
            return user
        Attempt.add(email)

    @classmethod
    def _dummy_password_hash(cls):
        "A hash of the current method that no password matches"
        if not _dummy_hash:
            _dummy_hash.append(cls.hash_password(secrets.token_hex(32)))
        return _dummy_hash[0]

    @classmethod
    def portal_set_password(cls, email, token, password):
        """Set the password of the reset link's token; return whether it did

        The tokens cannot be guessed: a wrong one is not counted as a failed
        login (it would let anybody lock the address) and nobody waits. A
        new password ends the lock of the address."""
        Attempt = Pool().get('web.user.authenticate.attempt')
        email = email.lower()
        users = cls.search([('email', '=', email)], limit=1)
        if not users or not token:
            return False
        user, = users
        if not (user.reset_password_token and secrets.compare_digest(
                    user.reset_password_token, token)):
            return False
        expire = user.reset_password_token_expire
        user.clear_reset_password_token()
        if expire and expire > datetime.datetime.now():
            user.password = password
            user.save()
            Attempt.remove(email)
            return True
        user.save()
        return False

    def notify_pack_order(self, credit):
        "Tell the client and its account manager that a pack was ordered"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        config = Config(1)
        party = self.party
        line = credit.origin
        name = line.product.rec_name
        lang = pool.get('ir.lang').get(
            party.lang.code if party.lang else 'fr')
        until = lang.strftime(credit.end_date)
        Outbox.put(email_message(
                config.email_sender, formataddr((party.rec_name, self.email)),
                translated(party,
                    'webservice_forfait.msg_portal_pack_client_subject',
                    pack=name),
                translated(party,
                    'webservice_forfait.msg_portal_pack_client_body',
                    pack=name, date=until),
                auto='auto-generated'), resource=credit)
        tell_manager(party, credit, 'msg_portal_pack_staff',
            party=party.rec_name, pack=name, email=self.email,
            invoice=line.invoice.rec_name, date=until)

    @classmethod
    def set_password(cls, users, name, value):
        "A new password ends every session but the one setting it"
        pool = Pool()
        Session = pool.get('web.user.session')
        super().set_password(users, name, value)
        if value == 'x' * 10:
            return
        domain = [('user', 'in', [u.id for u in users])]
        current = Transaction().context.get('web_session')
        if current:
            domain.append(('key', '!=', current))
        with without_check_access():
            Session.delete(Session.search(domain))

    def send_password_link(self, invitation=False):
        "Send the link to set the password, valid for a day or a week"
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        self.set_reset_password_token()
        if invitation:
            self.reset_password_token_expire = (
                datetime.datetime.now() + INVITATION_VALIDITY)
        self.save()
        link = portal_link(
            'password/reset', email=self.email,
            token=self.reset_password_token)
        kind = 'invitation' if invitation else 'password'
        party = self.party
        subject = translated(
            party, 'webservice_forfait.msg_portal_%s_subject' % kind)
        body = translated(
            party, 'webservice_forfait.msg_portal_%s_body' % kind,
            link=link, client=party.rec_name if party else '')
        Outbox.put(email_message(
                Config(1).email_sender, self.email, subject, body,
                auto='auto-generated'), resource=self)


class PortalInvite(Wizard):
    __name__ = 'party.party.forfait_portal_invite'
    start = StateView(
        'party.party.forfait_portal_invite.start',
        'webservice_forfait.portal_invite_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Invite", 'invite', 'tryton-ok', default=True),
            ])
    invite = StateTransition()

    def default_start(self, fields):
        emails = [
            c for c in self.record.contact_mechanisms if c.type == 'email']
        return {
            'party': self.record.id,
            'contact': emails[0].id if emails else None,
            }

    def transition_invite(self):
        pool = Pool()
        User = pool.get('web.user')
        email = self.start.contact.value.strip().lower()
        with without_check_access():
            self._invite(User, email)
        return 'end'

    def _invite(self, User, email):
        users = User.search([
                ('email', '=', email),
                ('active', 'in', [True, False]),
                ], order=[('active', 'DESC')], limit=1)
        if users:
            user, = users
            if user.party and user.party != self.record:
                raise PortalError(gettext(
                        'webservice_forfait.msg_portal_account_other_party',
                        email=email, party=user.party.rec_name))
            user.active = True
        else:
            user = User(email=email)
        user.party = self.record
        user.save()
        user.send_password_link(invitation=True)


class PortalInviteStart(ModelView):
    __name__ = 'party.party.forfait_portal_invite.start'
    __string__ = "Invite to the Portal"
    party = fields.Many2One('party.party', "Client", readonly=True)
    contact = fields.Many2One(
        'party.contact_mechanism', "E-mail", required=True,
        domain=[
            ('party', '=', Eval('party', -1)),
            ('type', '=', 'email'),
            ],
        help="The client's address that receives the invitation; "
        "it becomes the login.")


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    @classmethod
    def create_from_portal(cls, user, subject, category, description, files):
        "Create the request of a portal user and acknowledge it"
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        contacts = [
            c for c in user.party.contact_mechanisms
            if c.type == 'email' and c.value.lower() == user.email]
        request = cls(
            party=user.party, contact=contacts[0] if contacts else None,
            channel='portal', subject=subject, category=category,
            description=description, email_sender=user.email)
        with without_check_access():
            request.save()
            Channel.subscribe_email(request, user.email)
        request.attach_files(files)
        request.acknowledge(user.email)
        return request

    def post_from_portal(self, user, content):
        "Add a message of the client to the conversation; staff are told"
        pool = Pool()
        Channel = pool.get('ir.chat.channel')
        Message = pool.get('ir.chat.message')
        with without_check_access():
            channel = Channel._get_channel(self)
            if not any(f.email == user.email for f in channel.followers):
                Channel.subscribe_email(self, user.email)
            message = Message(
                channel=channel, email=user.email, audience='public',
                content=content)
            message.save()
        Channel.dispatch_message(message, lambda u: u == user.email)
        return message

    def portal_messages(self):
        "The conversation the client may read: public messages only"
        pool = Pool()
        Message = pool.get('ir.chat.message')
        return Message.search([
                ('channel.resource', '=', str(self)),
                ('audience', '=', 'public'),
                ], order=[('create_date', 'ASC'), ('id', 'ASC')])


class Subscription(metaclass=PoolMeta):
    __name__ = 'sale.subscription'

    @classmethod
    def create_from_portal(cls, user, service):
        """Create a quotation of the forfait for the staff to confirm and
        tell the client and the agency"""
        pool = Pool()
        Address = pool.get('party.address')
        Date = pool.get('ir.date')
        Line = pool.get('sale.subscription.line')
        ModelData = pool.get('ir.model.data')
        RuleSet = pool.get('sale.subscription.recurrence.rule.set')
        Config = pool.get('forfait.configuration')
        Outbox = pool.get('forfait.outbox')
        party = user.party
        subscription = cls(party=party, start_date=Date.today())
        subscription.on_change_party()
        if not subscription.invoice_address:
            # as the client's forms do, a party has at least one address
            subscription.invoice_address = Address(party=party)
            subscription.invoice_address.save()
        subscription.invoice_recurrence = RuleSet(ModelData.get_id(
                'webservice_forfait', 'recurrence_%s'
                % service.product.template.forfait_invoicing))
        subscription.description = translated(
            party, 'webservice_forfait.msg_portal_subscription_description',
            email=user.email)
        line = Line(subscription=subscription, service=service, quantity=1)
        line.on_change_service()
        line.start_date = subscription.start_date
        subscription.lines = [line]
        subscription.save()
        cls.quote([subscription])

        config = Config(1)
        name = service.product.rec_name
        Outbox.put(email_message(
                config.email_sender, formataddr((party.rec_name, user.email)),
                translated(party,
                    'webservice_forfait.msg_portal_subscribe_client_subject',
                    forfait=name),
                translated(party,
                    'webservice_forfait.msg_portal_subscribe_client_body',
                    forfait=name),
                auto='auto-generated'), resource=subscription)
        tell_manager(party, subscription, 'msg_portal_subscribe_staff',
            party=party.rec_name, forfait=name, email=user.email,
            addresses=client_addresses(party) or user.email)
        return subscription


def tell_manager(client, resource, message, **values):
    """Mail the message's _subject and _body to the client's account manager,
    in the manager's language, or else to the agency's address"""
    pool = Pool()
    Outbox = pool.get('forfait.outbox')
    sender = pool.get('forfait.configuration')(1).email_sender
    manager = client.forfait_manager
    staff = manager.email if manager and manager.email else sender
    language = manager.language.code if manager and manager.language else (
        'fr')
    with Transaction().set_context(language=language):
        subject = gettext(
            'webservice_forfait.%s_subject' % message, **values)
        body = gettext('webservice_forfait.%s_body' % message, **values)
    Outbox.put(email_message(
            sender, staff, subject, body, auto='auto-generated'),
        resource=resource)
