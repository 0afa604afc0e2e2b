"What the client is told: update reports, threshold alerts, expiry"
from email.utils import formataddr

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, Workflow, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction, without_check_access

from .ledger import ZERO, format_hours
from .outbox import email_message


def client_addresses(party):
    "Return the To header of the client's e-mail contacts, or None"
    addresses = [
        formataddr((c.name or party.name, c.value))
        for c in party.contact_mechanisms if c.type == 'email' and c.value]
    return ', '.join(addresses) or None


def client_language(party):
    "Return the code of the language the client reads: French by default"
    return party.lang.code if party and party.lang else 'fr'


def figures_for(party, company, date=None, past=False):
    """Return the client's dated figures as e-mail lines, in its language:
    the same figures and labels as the portal and the documents"""
    from .party import figures_text
    pool = Pool()
    with Transaction().set_context(
            language=client_language(party), company=company.id):
        today = pool.get('ir.date').today()
        figures = party.forfait_figures(date=date)
        return figures_text(figures, date or today, past=past)


def client_date(party, date):
    "Return date as the client writes it"
    with Transaction().set_context(language=client_language(party)):
        return Pool().get('ir.lang').get().strftime(date)


def translated(party, message_id, **variables):
    "Return the message in the language of party"
    with Transaction().set_context(language=client_language(party)):
        return gettext(message_id, **variables)


class Alert(ModelSQL, ModelView):
    __name__ = 'forfait.credit.alert'
    __string__ = "Forfait Alert"

    credit = fields.Many2One(
        'forfait.credit', "Credit", required=True, readonly=True,
        ondelete='CASCADE')
    kind = fields.Selection([
            ('threshold', "Threshold"),
            ('expiry', "Expiry Reminder"),
            ], "Kind", required=True, readonly=True)
    threshold = fields.Integer("Threshold", readonly=True)
    date = fields.Date("Date", required=True, readonly=True)
    note = fields.Char(
        "Note", readonly=True,
        help="Why the client was not told, when it was not.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('credit_kind_threshold_unique',
                Unique(t, t.credit, t.kind, t.threshold),
                'webservice_forfait.msg_alert_unique'),
            ]
        cls._order = [('date', 'DESC'), ('id', 'DESC')]


class Credit(metaclass=PoolMeta):
    __name__ = 'forfait.credit'

    alerts = fields.One2Many(
        'forfait.credit.alert', 'credit', "Alerts", readonly=True)

    @classmethod
    def notify_thresholds(cls, credits):
        """Tell the client, once per credit and threshold, that its
        consumption crossed it"""
        pool = Pool()
        Alert = pool.get('forfait.credit.alert')
        config = pool.get('forfait.configuration')(1)
        thresholds = config.thresholds()
        if not thresholds:
            return
        alerts = []
        for credit in cls.browse(credits):
            done = {
                a.threshold for a in credit.alerts if a.kind == 'threshold'}
            consumed = credit.consumed
            for threshold in thresholds:
                if (consumed * 100 >= credit.hours * threshold
                        and threshold not in done):
                    alerts.append(credit.alert('threshold', threshold))
        with without_check_access():
            Alert.save(alerts)

    def alert(self, kind, threshold=0):
        "Return the alert record of kind, sending its e-mail if possible"
        pool = Pool()
        Alert = pool.get('forfait.credit.alert')
        Outbox = pool.get('forfait.outbox')
        config = pool.get('forfait.configuration')(1)
        alert = Alert(
            credit=self, kind=kind, threshold=threshold,
            date=pool.get('ir.date').today())
        to = client_addresses(self.party)
        if not to:
            alert.note = translated(
                self.party, 'webservice_forfait.msg_alert_no_email')
            return alert
        variables = {
            'client': self.party.name,
            'threshold': threshold,
            'hours': format_hours(self.hours),
            'consumed': format_hours(self.consumed),
            'remaining': format_hours(self.remaining),
            'end': client_date(self.party, self.end_date),
            'portal': config.portal_url or '',
            'figures': figures_for(self.party, self.company),
            }
        if kind == 'expiry':
            name = 'expiry'
        elif threshold >= 100:
            name = 'exhausted'
        else:
            name = 'threshold'
        subject = translated(
            self.party, 'webservice_forfait.msg_%s_subject' % name,
            **variables)
        body = translated(
            self.party, 'webservice_forfait.msg_%s_body' % name, **variables)
        manager = self.party.forfait_manager
        Outbox.put(email_message(
                config.email_sender, to, subject, body,
                cc=manager.email if manager and manager.email else None,
                auto='auto-generated'), resource=self)
        return alert

    @classmethod
    def send_expiry_reminders(cls):
        "Cron: remind the clients whose hours left expire soon"
        pool = Pool()
        Alert = pool.get('forfait.credit.alert')
        Date = pool.get('ir.date')
        config = pool.get('forfait.configuration')(1)
        if not config.notify_expiry:
            return
        today = Date.today()
        credits = cls.search([
                ('state', '=', 'open'),
                ('end_date', '>=', today),
                ('end_date', '<=', today + config.expiry_delay()),
                ('alerts', 'not where', [('kind', '=', 'expiry')]),
                ])
        alerts = [
            c.alert('expiry') for c in credits if c.remaining > ZERO]
        with without_check_access():
            Alert.save(alerts)


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    forfait_manager = fields.Many2One(
        'res.user', "Account Manager",
        help="The staff member copied on the client's forfait alerts.")
    forfait_monthly_statement = fields.Boolean(
        "Monthly Forfait Statement",
        help="E-mail the client its forfait statement every month.")

    @classmethod
    def default_forfait_monthly_statement(cls):
        return False

    @classmethod
    def send_forfait_statements(cls):
        "Cron: e-mail their statement to the clients who asked for it"
        pool = Pool()
        Outbox = pool.get('forfait.outbox')
        Statement = pool.get('forfait.party.statement', type='report')
        config = pool.get('forfait.configuration')(1)
        Credit = pool.get('forfait.credit')
        parties = {c.party for c in Credit.search([
                    ('party.forfait_monthly_statement', '=', True)])}
        for party in sorted(parties, key=lambda p: p.id):
            to = client_addresses(party)
            if not to:
                continue
            _, pdf, _, _ = Statement.execute([party.id], {})
            message = email_message(
                config.email_sender, to,
                translated(party, 'webservice_forfait.msg_statement_subject'),
                translated(party, 'webservice_forfait.msg_statement_body'),
                auto='auto-generated')
            message.add_attachment(
                bytes(pdf), maintype='application', subtype='pdf',
                filename='releve-forfait.pdf')
            Outbox.put(message)


class Request(metaclass=PoolMeta):
    __name__ = 'forfait.request'

    @property
    def recipients(self):
        "The request's contact, or else the client's e-mail addresses"
        if self.contact:
            return self.contact.value
        return client_addresses(self.party) if self.party else None

    @classmethod
    @ModelView.button
    @Workflow.transition('done')
    def done(cls, requests):
        super().done(requests)
        config = Pool().get('forfait.configuration')(1)
        if config.notify_report:
            cls.__queue__.send_update_report(requests)

    @classmethod
    def send_update_report(cls, requests):
        "Send the update report, as a PDF, to the request's contact"
        pool = Pool()
        Outbox = pool.get('forfait.outbox')
        UpdateReport = pool.get('forfait.request.update_report', type='report')
        config = pool.get('forfait.configuration')(1)
        for request in requests:
            if request.state != 'done':
                continue
            to = request.recipients
            if not to:
                request.chat_post_internal(
                    'webservice_forfait.msg_report_no_email')
                continue
            _, pdf, _, _ = UpdateReport.execute([request.id], {})
            variables = {
                'number': request.number, 'subject': request.subject,
                'billed': format_hours(request.time_billed or ZERO),
                'figures': figures_for(
                    request.party, request.company,
                    date=request.done_date, past=True),
                }
            message = email_message(
                config.email_sender, to,
                translated(request.party,
                    'webservice_forfait.msg_report_subject', **variables),
                translated(request.party,
                    'webservice_forfait.msg_report_body', **variables),
                in_reply_to=request.email_message_id, auto='auto-generated')
            message.add_attachment(
                bytes(pdf), maintype='application', subtype='pdf',
                filename='%s.pdf' % request.number)
            Outbox.put(message, resource=request)

    def tell_waiting(self):
        "Tell the client its request waits for a new credit"
        pool = Pool()
        Outbox = pool.get('forfait.outbox')
        config = pool.get('forfait.configuration')(1)
        to = self.recipients
        if not to:
            self.chat_post_internal('webservice_forfait.msg_report_no_email')
            return
        variables = {
            'number': self.number, 'subject': self.subject,
            'portal': config.portal_url or '',
            }
        Outbox.put(email_message(
                config.email_sender, to,
                translated(self.party,
                    'webservice_forfait.msg_waiting_subject', **variables),
                translated(self.party,
                    'webservice_forfait.msg_waiting_body', **variables),
                in_reply_to=self.email_message_id, auto='auto-generated'),
            resource=self)

    def chat_post_internal(self, message_id):
        "Leave a note for the staff in the request's conversation"
        Channel = Pool().get('ir.chat.channel')
        with Transaction().set_context(language=self.chat_language()):
            Channel.post(self, gettext(message_id), audience='internal')
