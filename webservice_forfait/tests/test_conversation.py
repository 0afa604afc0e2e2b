"""The conversation of a request: followers, replies through the outbox to a
real SMTP server, assignment, the "to answer" marker and quick replies"""
import datetime as dt

import trytond.config as config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction, TransactionError
from trytond.worker import run_task

from .database import count_queries
from .smtp_server import SMTPServer, free_port
from .test_inbound_email import run_committed, use_smtp_server
from .test_portal import load_french

HOUR = dt.timedelta(hours=1)
IDENTIFIER = 'c0nvers4t10n'
SENDER = 'Web Service <update@webservice.mq>'
STAFF = ['marie-line', 'jean-marc', 'corinne']


def run_as(login, func, check_access=True):
    """Run func committed as the user of login, with the preferences the web
    client sends and the access checks of an RPC call, then its tasks"""
    with Transaction().start(DB_NAME, 0) as transaction:
        User = Pool().get('res.user')
        user, = User.search([('login', '=', login)])
        user_id = user.id
    extras = {}
    result = []
    while True:
        with Transaction().start(DB_NAME, user_id, **extras) as transaction:
            User = Pool().get('res.user')
            context = User.get_preferences(context_only=True)
            try:
                with Transaction().set_context(
                        context, _check_access=check_access):
                    result.append(func())
            except TransactionError as error:
                transaction.rollback()
                error.fix(extras)
                continue
            transaction.commit()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
        break
    for task_id in tasks:
        run_task(DB_NAME, task_id)
    return result[-1]


def in_company(func):
    result = []

    def run():
        Company = Pool().get('company.company')
        company, = Company.search([])
        with set_company(company):
            result.append(func())
    run_committed(run)
    return result[-1]


def read(func):
    with Transaction().start(DB_NAME, 0):
        return func()


class ConversationTestCase(RouteTestCase):
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        # the operating system's user must never be the sender
        old = config.get('email', 'from')
        config.set('email', 'from', 'root@localhost')
        cls.addClassCleanup(config.set, 'email', 'from', old)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Config = pool.get('forfait.configuration')
        User = pool.get('res.user')
        Employee = pool.get('company.employee')
        Party = pool.get('party.party')
        ModelData = pool.get('ir.model.data')
        Lang = pool.get('ir.lang')
        load_french()
        company = create_company()
        group = ModelData.get_id('webservice_forfait', 'group_forfait')
        french, = Lang.search([('code', '=', 'fr')])
        with set_company(company):
            for login in STAFF:
                party = Party(name=login.title())
                party.save()
                employee = Employee(party=party, company=company)
                employee.save()
                User(
                    login=login, name=login.title(),
                    email='%s@webservice.mq' % login, groups=[group],
                    language=french,
                    companies=[company], company=company,
                    employees=[employee], employee=employee).save()
            config_ = Config(1)
            config_.email_sender = SENDER
            config_.portal_url = 'https://portail.webservice.mq'
            config_.assignment_rule = 'none'
            config_.save()
            inbox = config_.inbound_inbox
            inbox.identifier = IDENTIFIER
            inbox.save()

    def setUp(self):
        super().setUp()
        self.sent = len(self.smtp.messages)
        self.configure(
            email_sender=SENDER, assignment_rule='none',
            notify_staff_email=False)

    def new_mail(self):
        return self.smtp.messages[self.sent:]

    def configure(self, **values):
        def write():
            Config = Pool().get('forfait.configuration')
            Config.write([Config(1)], values)
        run_committed(write)

    def client_party(self, name, email='client@example.mq', manager=None):
        def create():
            pool = Pool()
            Party = pool.get('party.party')
            User = pool.get('res.user')
            party = Party(name=name, contact_mechanisms=[
                    {'type': 'email', 'value': email}] if email else [])
            if manager:
                party.forfait_manager, = User.search(
                    [('login', '=', manager)])
            party.save()
            return party.id
        return in_company(create)

    def request(self, party_id, assignee=None, subject="Horaires", **values):
        "A staff request of the party, opened"
        def create():
            pool = Pool()
            Request = pool.get('forfait.request')
            User = pool.get('res.user')
            request = Request(
                party=party_id, subject=subject, channel='staff', **values)
            request.on_change_party()
            if assignee:
                request.assignee, = User.search([('login', '=', assignee)])
            request.save()
            Request.open([request])
            return request.id
        return in_company(create)

    def post(self, login, request_id, content, audience='public'):
        def post():
            Channel = Pool().get('ir.chat.channel')
            return Channel.post(
                'forfait.request,%s' % request_id, content, audience).id
        # as the RPC of ir.chat.channel.post, which checks the access itself
        return run_as(login, post, check_access=False)

    def receive(self, data):
        response = self.client().post(
            '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER), data=data)
        self.assertEqual(response.status_code, 204)

    def get(self, request_id):
        "The request's state of conversation"
        def get():
            pool = Pool()
            Request = pool.get('forfait.request')
            Channel = pool.get('ir.chat.channel')
            request = Request(request_id)
            channel = Channel._get_channel(request)
            return {
                'emails': sorted(
                    f.email for f in channel.followers if f.email),
                'users': sorted(
                    f.user.login for f in channel.followers if f.user),
                'to_answer': request.to_answer,
                'assignee': request.assignee.login if request.assignee
                else None,
                'outbox': [
                    (o.state, o.attempts, bool(o.chat_message))
                    for o in request.outbox_mails
                    if o.chat_message],
                'messages': [
                    (m.audience, m.content) for m in channel_messages(
                        channel)],
                }
        with Transaction().start(DB_NAME, 0):
            return get()

    def test_reply_on_staff_request_reaches_contact(self):
        "A staff member's public reply is e-mailed to the contact via outbox"
        party = self.client_party(
            "Boulangerie Chez Lucette", 'lucette@chezlucette.mq')
        request = self.request(party, assignee='marie-line')
        state = self.get(request)
        self.assertEqual(state['emails'], ['lucette@chezlucette.mq'])
        self.assertEqual(state['users'], ['marie-line'])

        self.post('jean-marc', request, "Bonjour, la page est en ligne.")
        mail, = self.new_mail()
        self.assertEqual(
            mail['X-Envelope-To'], 'lucette@chezlucette.mq')
        self.assertEqual(str(mail['From']), SENDER)
        self.assertIn("la page est en ligne", mail.get_content())
        self.assertRegex(
            str(mail['Reply-To']), r'^update\+[0-9a-f]{32}@webservice\.mq$')
        self.assertRegex(str(mail['Subject']), r'^\[MAJ-\d{4}-\d+\] Horaires')
        state = self.get(request)
        self.assertEqual(state['outbox'], [('sent', 0, True)])
        # whoever replies follows the conversation
        self.assertEqual(state['users'], ['jean-marc', 'marie-line'])

    def test_internal_note_stays_internal(self):
        party = self.client_party("Hôtel Bakoua", 'direction@bakoua.mq')
        request = self.request(party)
        self.post('corinne', request, "Client difficile", audience='internal')
        self.assertEqual(self.new_mail(), [])
        self.assertEqual(self.get(request)['outbox'], [])

    def test_reply_on_triaged_request(self):
        "An unknown sender's request, triaged: contact and sender get it"
        self.receive(
            b'From: Nouveau <nouveau@gmail.example>\r\n'
            b'To: update@webservice.mq\r\n'
            b'Subject: Site de la pharmacie\r\n'
            b'Message-ID: <triage-1@gmail.example>\r\n'
            b'\r\nBonjour, pouvez-vous changer nos horaires ?\r\n')
        party = self.client_party(
            "Pharmacie du Bourg", 'contact@pharmacie-bourg.mq')

        def triaged():
            Request = Pool().get('forfait.request')
            request, = Request.search(
                [('subject', '=', "Site de la pharmacie")])
            return request.id, request.to_answer
        request, to_answer = read(triaged)
        # a new request of a client waits for an answer; nobody is
        # assigned, so the staff is told
        self.assertTrue(to_answer)
        self.assertEqual(notified(request), sorted(STAFF))

        def triage():
            Request = Pool().get('forfait.request')
            request, = Request.search(
                [('subject', '=', "Site de la pharmacie")])
            self.assertEqual(request.party, None)
            request.party = party
            request.on_change_party()
            request.save()
            Request.open([request])
            return request.id
        self.sent = len(self.smtp.messages)
        request = run_as('corinne', triage)
        state = self.get(request)
        self.assertEqual(state['emails'], [
                'contact@pharmacie-bourg.mq', 'nouveau@gmail.example'])

        self.post('corinne', request, "C'est fait.")
        mail, = self.new_mail()
        self.assertEqual(sorted(mail['X-Envelope-To'].split(', ')), [
                'contact@pharmacie-bourg.mq', 'nouveau@gmail.example'])
        # threaded with the acknowledgement the sender received
        self.assertTrue(str(mail['In-Reply-To']).strip())

    def test_contact_change_updates_followers(self):
        party = self.client_party("Garage Caraïbes", 'accueil@garage.mq')

        def add_contact():
            ContactMechanism = Pool().get('party.contact_mechanism')
            contact = ContactMechanism(
                party=party, type='email', value='atelier@garage.mq')
            contact.save()
            return contact.id
        contact = in_company(add_contact)
        request = self.request(party)
        self.assertEqual(self.get(request)['emails'], ['accueil@garage.mq'])

        def change():
            Request = Pool().get('forfait.request')
            Request.write([Request(request)], {'contact': contact})
        run_as('corinne', change)
        self.assertEqual(self.get(request)['emails'], ['atelier@garage.mq'])

    def test_client_change_updates_followers(self):
        "Moving a request to another client swaps the client's addresses"
        first = self.client_party("Case à Rhum", 'bar@caserhum.mq')
        second = self.client_party("Rhumerie du Nord", 'accueil@rhumerie.mq')
        request = self.request(first)
        self.assertEqual(self.get(request)['emails'], ['bar@caserhum.mq'])

        def move():
            # as the web client does: the party's on_change picks the
            # new client's contact
            Request = Pool().get('forfait.request')
            record = Request(request)
            record.party = second
            record.on_change_party()
            record.save()
        run_as('corinne', move)
        self.assertEqual(
            self.get(request)['emails'], ['accueil@rhumerie.mq'])

        self.post('corinne', request, "Votre demande est bien reçue.")
        mail, = self.new_mail()
        self.assertEqual(mail['X-Envelope-To'], 'accueil@rhumerie.mq')

    def test_new_assignee_replaces_old(self):
        "The previous assignee stops following, whoever else replied stays"
        party = self.client_party("Pâtisserie Doudou", 'doudou@patisserie.mq')
        request = self.request(party, assignee='marie-line')
        self.post('jean-marc', request, "Nous regardons.")
        self.assertEqual(
            self.get(request)['users'], ['jean-marc', 'marie-line'])

        def reassign():
            pool = Pool()
            Request = pool.get('forfait.request')
            User = pool.get('res.user')
            corinne, = User.search([('login', '=', 'corinne')])
            Request.write([Request(request)], {'assignee': corinne.id})
        run_as('jean-marc', reassign)
        state = self.get(request)
        self.assertEqual(state['assignee'], 'corinne')
        self.assertEqual(state['users'], ['corinne', 'jean-marc'])

    def test_smtp_down_kept_and_delivered_once(self):
        party = self.client_party("Habitation Bellevue", 'contact@bellevue.mq')
        request = self.request(party)
        port = free_port()
        old = config.get('email', 'uri')
        config.set('email', 'uri', 'smtp://127.0.0.1:%s' % port)
        self.addCleanup(config.set, 'email', 'uri', old)
        self.post('marie-line', request, "Nous attendons vos photos.")
        state = self.get(request)
        self.assertEqual(state['outbox'], [('pending', 1, True)])
        self.assertEqual(state['messages'][-1], (
                'public', "Nous attendons vos photos."))

        def send_pending():
            Pool().get('forfait.outbox').send_pending()
        with SMTPServer(port) as smtp:
            run_committed(send_pending)
            run_committed(send_pending)
            delivered = [
                m for m in smtp.messages
                if "vos photos" in m.get_content()]
        self.assertEqual(len(delivered), 1)
        self.assertEqual(
            delivered[0]['X-Envelope-To'], 'contact@bellevue.mq')
        self.assertEqual(self.get(request)['outbox'], [('sent', 1, True)])

    def test_sender_missing(self):
        "No sender address: the translated message, nothing posted"
        party = self.client_party("Ti Punch Bar", 'bar@tipunch.mq')
        request = self.request(party)
        before = self.get(request)['messages']
        self.configure(email_sender=None)
        with self.assertRaises(UserError) as cm:
            self.post('corinne', request, "Bonjour")
        with Transaction().start(DB_NAME, 0, context={'language': 'fr'}):
            expected = gettext(
                'webservice_forfait.msg_conversation_sender_missing')
        self.assertEqual(cm.exception.message, expected)
        self.assertIn("Adresse d'expédition", expected)
        self.assertEqual(self.get(request)['messages'], before)
        self.assertEqual(self.new_mail(), [])
        # an internal note needs no sender
        self.post('corinne', request, "Note", audience='internal')

    def test_no_external_recipient(self):
        party = self.client_party("Sans E-mail", email=None)
        request = self.request(party)
        with self.assertRaises(UserError) as cm:
            self.post('corinne', request, "Bonjour")
        self.assertIn("Contact", cm.exception.message)
        self.assertEqual(self.get(request)['messages'], [])

    def test_client_reply_to_answer(self):
        """A client's e-mail reply marks the request to answer and notifies
        the assignee (in Tryton and by e-mail); a staff reply clears it"""
        self.configure(notify_staff_email=True)
        party = self.client_party(
            "Boulangerie Chez Lucette", 'commandes@chezlucette.mq')
        request = self.request(party, assignee='jean-marc')
        self.post('jean-marc', request, "Quelle photo voulez-vous ?")
        question, = self.new_mail()
        self.assertFalse(self.get(request)['to_answer'])

        def notifications():
            Notification = Pool().get('res.notification')
            return [
                (n.user.login, n.records) for n in Notification.search(
                    [('model', '=', 'forfait.request')])]
        before = read(notifications)
        self.sent = len(self.smtp.messages)
        self.receive((
                'From: Lucette <commandes@chezlucette.mq>\r\n'
                'To: %s\r\n'
                'Subject: Re: la photo\r\n'
                'Message-ID: <reply-1@chezlucette.mq>\r\n'
                '\r\nCelle du gâteau coco, merci.\r\n' % question['Reply-To']
                ).encode('utf-8'))
        state = self.get(request)
        self.assertTrue(state['to_answer'])
        self.assertEqual(
            state['messages'][-1], ('public', "Celle du gâteau coco, merci."))
        new = read(notifications)[len(before):]
        self.assertEqual(new, [('jean-marc', '[%s]' % request)])
        staff_mail, = self.new_mail()
        self.assertEqual(
            staff_mail['X-Envelope-To'], 'jean-marc@webservice.mq')
        self.assertIn("gâteau coco", staff_mail.get_content())

        def tab_count(name):
            def count():
                pool = Pool()
                Request = pool.get('forfait.request')
                return Request.search_count([('to_answer', '=', True)])
            return run_as(name, count)
        self.assertGreaterEqual(tab_count('jean-marc'), 1)
        self.post('jean-marc', request, "Entendu.")
        self.assertFalse(self.get(request)['to_answer'])

    def test_dismiss(self):
        party = self.client_party("Le Lagon Bleu", 'lagon@bleu.mq')
        request = self.request(party)

        def client_writes():
            Request = Pool().get('forfait.request')
            user_ = type('User', (), {'email': 'lagon@bleu.mq'})
            Request(request).post_from_portal(user_, "Merci !")
        in_company(client_writes)
        self.assertTrue(self.get(request)['to_answer'])
        # unassigned: the whole staff is told
        self.assertEqual(notified(request), sorted(STAFF))

        def dismiss():
            Request = Pool().get('forfait.request')
            Request.dismiss([Request(request)])
        run_as('corinne', dismiss)
        self.assertFalse(self.get(request)['to_answer'])

    def test_assignment_rules(self):
        "Account manager first, else round-robin over the three staff users"
        self.configure(assignment_rule='manager_round_robin')
        managed = self.client_party(
            "Distillerie", 'rhum@distillerie.mq', manager='corinne')
        other = self.client_party("Fleuriste", 'fleurs@fleuriste.mq')
        self.assertEqual(self.get(self.request(managed))['assignee'],
            'corinne')

        def create(count):
            def create():
                Request = Pool().get('forfait.request')
                requests = Request.create([{
                            'party': other, 'subject': "Tour %s" % i}
                        for i in range(count)])
                return [r.assignee.login for r in requests]
            return in_company(create)
        first = create(1) + create(1) + create(1)
        self.assertEqual(sorted(first), sorted(STAFF))
        # then each in the same turn again, also within one creation
        self.assertEqual(create(3), first)
        self.assertEqual(create(1) + create(2), first)

        # the assignee follows the request's conversation
        request = self.request(other)
        state = self.get(request)
        self.assertEqual(state['users'], [state['assignee']])

        self.configure(assignment_rule='none')
        self.assertIsNone(self.get(self.request(other))['assignee'])

    def test_time_logger_follows(self):
        party = self.client_party("Librairie", 'livres@librairie.mq')
        request = self.request(party, assignee='marie-line')

        def log():
            pool = Pool()
            Line = pool.get('timesheet.line')
            User = pool.get('res.user')
            user, = User.search([('login', '=', 'corinne')])
            Line.create([{
                        'forfait_request': request, 'duration': HOUR,
                        'employee': user.employee.id,
                        'description': "Mise en page"}])
        run_as('corinne', log)
        self.assertEqual(
            self.get(request)['users'], ['corinne', 'marie-line'])

    def test_quick_reply(self):
        "A template, in French, filled with the request's values and sent"
        party = self.client_party("Boutique Madras", 'madras@boutique.mq')
        request = self.request(party, subject="Nouvelle collection")

        def reply():
            pool = Pool()
            Request = pool.get('forfait.request')
            Template = pool.get('forfait.reply.template')
            Reply = pool.get('forfait.request.reply', type='wizard')
            ModelData = pool.get('ir.model.data')
            template = Template(ModelData.get_id(
                    'webservice_forfait', 'reply_template_information'))
            record = Request(request)
            with Transaction().set_context(
                    active_model='forfait.request', active_id=record.id,
                    active_ids=[record.id]):
                session_id, _, _ = Reply.create()
                wizard = Reply(session_id)
                wizard.start.request = record
                wizard.start.template = template
                wizard.start.on_change_template()
                content = wizard.start.content
                wizard.start.content = content + "\nMerci !"
                wizard.start.internal = False
                wizard.transition_send()
            return content, record.number
        content, number = run_as('marie-line', reply, check_access=False)
        self.assertIn("Bonjour Boutique Madras", content)
        self.assertIn(
            "votre demande %s « Nouvelle collection »" % number, content)
        self.assertIn("https://portail.webservice.mq", content)
        mail, = self.new_mail()
        self.assertIn("Merci !", mail.get_content())
        self.assertIn("Pour réaliser votre demande", mail.get_content())

    def test_reply_template_placeholder(self):
        def create():
            Template = Pool().get('forfait.reply.template')
            Template.create([{'name': "Faux", 'content': "Bonjour {nom}"}])
        with self.assertRaises(UserError) as cm:
            in_company(create)
        self.assertIn('{hours_left}', cm.exception.message)
        self.assertIn('Faux', cm.exception.message)

        def count():
            Template = Pool().get('forfait.reply.template')
            return Template.search_count([('name', '=', "Faux")])
        self.assertEqual(read(count), 0)

    def test_long_messages(self):
        """A client's 9,500-character e-mail reply and portal message are
        stored whole and the staff reply goes out (PostgreSQL's NOTIFY
        takes 8,000 bytes)"""
        party = self.client_party("Longue Lettre", 'long@lettre.mq')
        request = self.request(party)
        text = ("Une phrase de la lettre du client é. " * 300)[:9500]
        number = read(lambda: Pool().get('forfait.request')(request).number)
        self.receive((
                'From: long@lettre.mq\r\n'
                'To: update@webservice.mq\r\n'
                'Subject: Re: [%s] Horaires\r\n'
                'Message-ID: <long-1@lettre.mq>\r\n'
                'Content-Type: text/plain; charset=utf-8\r\n'
                'Content-Transfer-Encoding: 8bit\r\n'
                '\r\n%s\r\n' % (number, text)).encode('utf-8'))

        def portal():
            Request = Pool().get('forfait.request')
            user_ = type('User', (), {'email': 'long@lettre.mq'})
            Request(request).post_from_portal(user_, text[::-1])
        in_company(portal)
        messages = self.get(request)['messages']
        self.assertEqual(
            [(a, len(c)) for a, c in messages[-2:]],
            [('public', 9500), ('public', 9500)])
        self.assertEqual(messages[-1][1], text[::-1])
        self.post('corinne', request, text)
        mail = self.new_mail()[-1]
        self.assertIn(text[-100:], mail.get_content())

    def test_list_query_count(self):
        "The request list with its new columns: same statements for 1 or 200"
        pool_fields = [
            'number', 'request_date', 'party.rec_name', 'subject', 'category',
            'channel', 'assignee.rec_name', 'to_answer', 'time_spent',
            'time_billed', 'state']
        party = self.client_party("Liste", 'liste@liste.mq')

        def create():
            Request = Pool().get('forfait.request')
            User = Pool().get('res.user')
            users = User.search([('login', 'in', STAFF)])
            requests = Request.create([{
                        'party': party, 'subject': "Liste %s" % i,
                        'assignee': users[i % 3].id,
                        'to_answer': bool(i % 2)} for i in range(200)])
            return [r.id for r in requests]
        ids = in_company(create)

        def count(size):
            "One call of the web client: search, then read the rows"
            def count():
                Request = Pool().get('forfait.request')
                with count_queries() as queries:
                    found = Request.search([('id', 'in', ids[:size])])
                    values = Request.read([r.id for r in found], pool_fields)
                self.assertEqual(len(values), size)
                return len(queries)
            return run_as('corinne', count)
        count(1)  # warm the caches
        counts = [count(1), count(200)]
        self.assertEqual(counts[0], counts[1], counts)


def notified(request_id):
    "The logins told about the request by a notification"
    def notified():
        Notification = Pool().get('res.notification')
        return sorted(n.user.login for n in Notification.search([
                    ('model', '=', 'forfait.request'),
                    ('records', '=', '[%s]' % request_id),
                    ]))
    return read(notified)


def channel_messages(channel):
    Message = Pool().get('ir.chat.message')
    return Message.search([
            ('channel', '=', channel.id),
            ['OR', ('user', '=', None), ('user', '!=', 0)],
            ], order=[('id', 'ASC')])
