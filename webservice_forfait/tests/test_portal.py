"The client portal through its routes: pages, actions, isolation, CSRF"
import datetime as dt
import io
import os
import re
import urllib.parse
from decimal import Decimal

from babel.dates import format_date

import trytond.config as config
from trytond.modules.account.tests.test_module import (
    create_chart, get_fiscalyear)
from trytond.modules.account_invoice.tests.test_module import (
    set_invoice_sequences)
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from ..ledger import year_end
from ..portal_routes.common import portal_route
from .database import count_queries
from .test_inbound_email import run_committed, use_smtp_server

HOUR = dt.timedelta(hours=1)
PASSWORD = 'Zouk-Love-1985'
PDF = b'%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n'
PNG = b'\x89PNG\r\n\x1a\n' + b'\0' * 64
TOKEN_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@portal_route('/_test/error')
def failing_page(portal):
    "A page that writes then fails as a bug would: the 500 page's case"
    Party = portal.pool.get('party.party')
    Party.create([{'name': "Secret party"}])
    return 1 / 0


def csrf(response):
    return TOKEN_RE.search(response.get_data(as_text=True)).group(1)


def in_company(func):
    "Run func committed, as root in the company, with its queued tasks"
    result = []

    def run():
        Company = Pool().get('company.company')
        company, = Company.search([])
        with set_company(company):
            result.append(func())
    run_committed(run)
    return result[-1]


def create_client(name, email, hours=20, password=PASSWORD, language='fr'):
    "A client with an e-mail contact, a credit and a portal account"
    def create():
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        User = pool.get('web.user')
        Lang = pool.get('ir.lang')
        Company = pool.get('company.company')
        company, = Company.search([])
        lang, = Lang.search([('code', '=', language)])
        party = Party(name=name, lang=lang, contact_mechanisms=[
                {'type': 'email', 'value': email}])
        party.save()
        if hours:
            today = pool.get('ir.date').today()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': hours * HOUR,
                        'start_date': today - dt.timedelta(days=91),
                        'end_date': today + dt.timedelta(days=273),
                        'reason': "Test"}])
        User.create([{'email': email, 'party': party.id,
                    'password': password}])
        return party.id
    return in_company(create)


def close_request(party_id, duration, subject="Horaires d'ouverture"):
    "A request of party, done with duration logged by the staff"
    def close():
        pool = Pool()
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        Employee = pool.get('company.employee')
        employee, = Employee.search([])
        request, = Request.create([{'party': party_id, 'subject': subject}])
        Request.open([request])
        Line.create([{
                    'forfait_request': request.id, 'duration': duration,
                    'employee': employee.id,
                    'description': "Mise à jour des horaires"}])
        Request.done([request])
        return request.number
    return in_company(close)


def load_french():
    "Make French translatable with this module's texts, as -l fr does"
    pool = Pool()
    Lang = pool.get('ir.lang')
    Translation = pool.get('ir.translation')
    french, = Lang.search([('code', '=', 'fr')])
    french.translatable = True
    french.save()
    Translation.translation_import('fr', 'webservice_forfait', os.path.join(
            os.path.dirname(__file__), '..', 'locale', 'fr.po'))


def set_prices():
    "Price the shipped forfaits with a 20 % tax; return the 2 h service"
    pool = Pool()
    Template = pool.get('product.template')
    ModelData = pool.get('ir.model.data')
    Account = pool.get('account.account')
    Tax = pool.get('account.tax')
    Category = pool.get('product.category')
    Company = pool.get('company.company')
    Service = pool.get('sale.subscription.service')
    company = Company.search([])[0]
    chart, = ModelData.search([
            ('module', '=', 'account'),
            ('fs_id', 'in', ['account_template_root_en',
                    'account_template_root_fr']),
            ], limit=1)
    create_chart(company, chart='account.' + chart.fs_id)
    revenue, = Account.search([
            ('type.revenue', '=', True),
            ('closed', '=', False)], limit=1)
    vat, = Account.search([
            ('type.statement', '=', 'balance'),
            ('closed', '=', False)], limit=1)
    tax = Tax(
        name="TVA 20 %", description="TVA 20 %", company=company,
        type='percentage', rate=Decimal('0.2'), invoice_account=vat,
        credit_note_account=vat)
    tax.save()
    category = Category(
        name="Forfaits", accounting=True, account_revenue=revenue,
        customer_taxes=[tax])
    category.save()
    for key, price in [('forfait_1h', 600), ('forfait_2h', 1100),
            ('forfait_3h', 1500), ('pack_5h', 300), ('pack_10h', 550)]:
        template = Template(ModelData.get_id(
                'webservice_forfait', 'template_%s' % key))
        template.list_price = Decimal(price)
        template.account_category = category
        template.save()
    return Service(ModelData.get_id(
            'webservice_forfait', 'service_forfait_2h')).id


def pack_invoices(party_id, count=1, post=True):
    "Invoices of 5 h packs for party, posted unless told otherwise"
    def create():
        pool = Pool()
        Invoice = pool.get('account.invoice')
        FiscalYear = pool.get('account.fiscalyear')
        Party = pool.get('party.party')
        Product = pool.get('product.product')
        ModelData = pool.get('ir.model.data')
        Company = pool.get('company.company')
        Date = pool.get('ir.date')
        company, = Company.search([])
        if not FiscalYear.search([
                    ('start_date', '<=', Date.today()),
                    ('end_date', '>=', Date.today())]):
            fiscalyear = set_invoice_sequences(get_fiscalyear(company))
            fiscalyear.save()
            FiscalYear.create_period([fiscalyear])
        pack = Product(
            ModelData.get_id('webservice_forfait', 'product_pack_5h'))
        invoices = [
            Invoice.sell_forfait_pack(Party(party_id), pack).origin.invoice
            for _ in range(count)]
        if post:
            Invoice.post(invoices)
        return [i.id for i in invoices]
    return in_company(create)


class PortalTestCase(RouteTestCase):
    "Every page and action of the portal, as a client's browser uses them"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        for option, value in [('max_attempt', '1')]:
            old = config.get('session', option)
            config.set('session', option, value)
            cls.addClassCleanup(config.set, 'session', option, old)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Config = pool.get('forfait.configuration')
        load_french()
        company = create_company()
        with set_company(company):
            create_employee(company, "Marie-Line Joseph")
            config = Config(1)
            config.email_sender = 'Web Service <update@webservice.mq>'
            config.portal_url = 'http://localhost/%s/portal' % DB_NAME
            config.portal_max_upload = 1_000_000
            config.save()

    def setUp(self):
        super().setUp()
        self.sent = len(self.smtp.messages)

    def new_mail(self):
        return self.smtp.messages[self.sent:]

    def url(self, path=''):
        return '/%s/portal/%s' % (self.db_name, path)

    def login(self, email, password=PASSWORD):
        client = self.client()
        page = client.get(self.url('login'))
        response = client.post(self.url('login'), data={
                'email': email, 'password': password,
                'csrf_token': csrf(page)})
        self.assertEqual(response.status_code, 303, response.get_data())
        return client

    def post(self, client, path, data, page=None, **kwargs):
        "Post a form with the CSRF token of the page it comes from"
        page = client.get(self.url(page if page is not None else path))
        data = dict(data, csrf_token=csrf(page))
        return client.post(self.url(path), data=data, **kwargs)

    def text(self, response):
        return response.get_data(as_text=True)

    def test_login_logout(self):
        "A client signs in, sees its dashboard, signs out"
        create_client("Boulangerie Chez Lucette", 'lucette@chezlucette.mq')
        client = self.client()
        response = client.get(self.url())
        self.assertEqual(response.status_code, 303)
        self.assertIn('/portal/login', response.location)

        client = self.login('Lucette@ChezLucette.mq')
        cookie = client.get_cookie(
            'forfait_session', path='/%s/portal' % self.db_name)
        self.assertTrue(cookie.http_only)
        self.assertEqual(cookie.same_site, 'Lax')
        dashboard = client.get(self.url())
        self.assertEqual(dashboard.status_code, 200)
        page = self.text(dashboard)
        self.assertIn("Bonjour, Boulangerie Chez Lucette", page)
        self.assertIn("20 h", page)
        self.assertEqual(
            dashboard.headers['X-Frame-Options'], 'DENY')
        self.assertIn("frame-ancestors 'none'",
            dashboard.headers['Content-Security-Policy'])
        self.assertEqual(dashboard.headers['Cache-Control'], 'no-store')

        response = self.post(client, 'logout', {}, page='')
        self.assertEqual(response.status_code, 303)
        self.assertEqual(client.get(self.url()).status_code, 303)

    def test_login_failure_no_enumeration(self):
        "A wrong password and an unknown address get the same answer"
        create_client("Hôtel Bakoua", 'direction@bakoua.mq', hours=0)
        answers = []
        for email in ['direction@bakoua.mq', 'nobody@bakoua.mq']:
            client = self.client()
            page = client.get(self.url('login'))
            response = client.post(self.url('login'), data={
                    'email': email, 'password': 'wrong',
                    'csrf_token': csrf(page)})
            answers.append((response.status_code, re.search(
                        r'class="error"[^>]*>([^<]*)<',
                        self.text(response)).group(1)))
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][0], 401)
        self.assertEqual(answers[0][1], "E-mail ou mot de passe incorrect.")

    def test_login_rate_limited(self):
        "Too many failed logins for an address are refused, even the right one"
        create_client("Garage Caraïbes", 'accueil@garage.mq', hours=0)
        client = self.client()
        for _ in range(3):
            page = client.get(self.url('login'))
            response = client.post(self.url('login'), data={
                    'email': 'accueil@garage.mq', 'password': 'wrong',
                    'csrf_token': csrf(page)})
        self.assertEqual(response.status_code, 429)
        page = client.get(self.url('login'))
        response = client.post(self.url('login'), data={
                'email': 'accueil@garage.mq', 'password': PASSWORD,
                'csrf_token': csrf(page)})
        self.assertEqual(response.status_code, 429)
        self.assertIn("Trop de tentatives", self.text(response))

    def test_csrf(self):
        "A form without the token of the session changes nothing"
        party = create_client("Caraïbes Location", 'accueil@location.mq')
        client = self.login('accueil@location.mq')
        response = client.post(self.url('requests/new'), data={
                'subject': "Forged", 'category': 'content'})
        self.assertEqual(response.status_code, 403)
        other = self.login('accueil@location.mq')
        token = csrf(other.get(self.url('requests/new')))
        response = client.post(self.url('requests/new'), data={
                'subject': "Forged", 'category': 'content',
                'csrf_token': token})
        self.assertEqual(response.status_code, 403)
        response = self.client().post(self.url('login'), data={
                'email': 'accueil@location.mq', 'password': PASSWORD})
        self.assertEqual(response.status_code, 403)
        with Transaction().start(DB_NAME, 0):
            Request = Pool().get('forfait.request')
            self.assertEqual(
                Request.search_count([('party', '=', party)]), 0)

    def test_session_expires(self):
        "A session older than the timeout no longer opens the pages"
        create_client("Distillerie", 'rhum@distillerie.mq', hours=0)
        client = self.login('rhum@distillerie.mq')
        self.assertEqual(client.get(self.url('session')).status_code, 200)
        with Transaction().start(DB_NAME, 0) as transaction:
            Session = Pool().get('web.user.session')
            table = Session.__table__()
            transaction.connection.cursor().execute(*table.update(
                    [table.create_date, table.write_date],
                    [dt.datetime(2000, 1, 1), None]))
            transaction.commit()
        self.assertEqual(client.get(self.url('session')).status_code, 401)
        self.assertEqual(client.get(self.url()).status_code, 303)

    def test_new_request(self):
        "A request sent from the portal exists, with its file, acknowledged"
        party = create_client("Boutique Madinina", 'contact@madinina.mq')
        client = self.login('contact@madinina.mq')
        response = self.post(client, 'requests/new', {
                'subject': "Nouvelle bannière",
                'category': 'illustrations',
                'description': "Remplacer la bannière de Noël.",
                'files': [(io.BytesIO(PNG), '../../bannière noël.png')],
                }, content_type='multipart/form-data')
        self.assertEqual(response.status_code, 303, self.text(response))
        number = response.location.split('/requests/')[1].split('?')[0]
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Request = pool.get('forfait.request')
            Attachment = pool.get('ir.attachment')
            request, = Request.search([('number', '=', number)])
            self.assertEqual(request.party.id, party)
            self.assertEqual(request.channel, 'portal')
            self.assertEqual(request.category, 'illustrations')
            self.assertEqual(request.contact.value, 'contact@madinina.mq')
            attachment, = Attachment.search(
                [('resource', '=', str(request))])
            self.assertEqual(attachment.name, 'bannière noël.png')
            self.assertEqual(bytes(attachment.data), PNG)
        ack, = [m for m in self.new_mail() if number in str(m['Subject'])]
        self.assertEqual(ack['To'], 'contact@madinina.mq')

        page = self.text(client.get(self.url('requests/' + number)))
        self.assertIn("Nouvelle bannière", page)
        self.assertIn("bannière noël.png", page)
        self.assertIn("Reçue", page)

    def test_new_request_bad_input(self):
        "Bad input is told on the form and creates nothing"
        party = create_client("Snack Coco", 'coco@snack.mq', hours=0)
        client = self.login('coco@snack.mq')
        menu = dict(subject="Menu", category='content')
        cases = [
            (dict(subject='  ', category='content'), "Saisissez un objet."),
            (dict(subject='x' * 201, category='content'),
                "L'objet est trop long"),
            (dict(menu, category='hacking'),
                "Choisissez un type de mise à jour"),
            (dict(menu, description='x' * 20_001),
                "La description est trop longue"),
            (dict(menu, files=[(io.BytesIO(b'MZ\x90\0'), 'menu.exe')]),
                "ce type de fichier n'est pas accepté"),
            (dict(menu, files=[(io.BytesIO(b'<html>'), 'menu.pdf')]),
                "son contenu ne correspond pas à son type"),
            (dict(menu, files=[(io.BytesIO(PDF + b'\0' * 1_000_000),
                            'menu.pdf')]),
                "menu.pdf dépasse 1 Mo"),
            ]
        for data, message in cases:
            with self.subTest(message=message):
                response = self.post(
                    client, 'requests/new', data,
                    content_type='multipart/form-data')
                self.assertEqual(response.status_code, 400)
                self.assertIn(message, self.text(response))
        with Transaction().start(DB_NAME, 0):
            Request = Pool().get('forfait.request')
            self.assertEqual(
                Request.search_count([('party', '=', party)]), 0)

    def test_request_conversation_and_files(self):
        "The client reads and posts messages and adds and downloads files"
        party = create_client("Pharmacie du Bourg", 'officine@bourg.mq')
        number = close_request(party, 2 * HOUR)
        client = self.login('officine@bourg.mq')

        def staff_reply():
            pool = Pool()
            Request = pool.get('forfait.request')
            Channel = pool.get('ir.chat.channel')
            request, = Request.search([('number', '=', number)])
            Channel.post(request, "Bien reçu, c'est en ligne.", 'public')
            Channel.post(request, "Note interne: facturer", 'internal')
        in_company(staff_reply)

        response = self.post(client, 'requests/%s/messages' % number, {
                'message': "Merci ! Pouvez-vous aussi changer le logo ?"},
            page='requests/' + number)
        self.assertEqual(response.status_code, 303)
        page = self.text(client.get(self.url('requests/' + number)))
        self.assertIn("Bien reçu, c'est en ligne.", page)
        self.assertIn("Pouvez-vous aussi changer le logo", page)
        self.assertNotIn("Note interne", page)
        self.assertIn("Mise à jour des horaires", page)
        self.assertIn("2 h", page)

        response = self.post(client, 'requests/%s/files' % number, {
                'files': [(io.BytesIO(PDF), 'logo.pdf')]},
            page='requests/' + number, content_type='multipart/form-data')
        self.assertEqual(response.status_code, 303)
        page = self.text(client.get(self.url('requests/' + number)))
        link = re.search(r'href="([^"]+/files/\d+)"', page).group(1)
        download = client.get(link)
        self.assertEqual(download.status_code, 200)
        self.assertEqual(download.get_data(), PDF)
        self.assertIn('attachment', download.headers['Content-Disposition'])
        self.assertEqual(download.headers['X-Content-Type-Options'], 'nosniff')

        report = client.get(self.url('requests/%s/report.pdf' % number))
        self.assertEqual(report.status_code, 200)
        self.assertTrue(report.get_data().startswith(b'%PDF'))

        with Transaction().start(DB_NAME, 0):
            Message = Pool().get('ir.chat.message')
            message, = Message.search([
                    ('email', '=', 'officine@bourg.mq'),
                    ('channel.resource.number', '=', number,
                        'forfait.request')])
            self.assertEqual(message.audience, 'public')

    def test_isolation(self):
        "Another client's records are 404 through every route"
        lucette = create_client("Épicerie Lucette", 'lucette@epicerie.mq')
        other = create_client("Hôtel Anse Mitan", 'hotel@ansemitan.mq')
        number = close_request(other, HOUR, subject="Secret de l'hôtel")

        def attach():
            pool = Pool()
            Request = pool.get('forfait.request')
            Credit = pool.get('forfait.credit')
            request, = Request.search([('number', '=', number)])
            request.attach_files([('tarifs.pdf', None, PDF)])
            credit, = Credit.search([('party', '=', other)])
            attachment, = pool.get('ir.attachment').search(
                [('resource', '=', str(request))])
            return credit.id, attachment.id
        credit_id, attachment_id = in_company(attach)
        own = close_request(lucette, HOUR)

        client = self.login('lucette@epicerie.mq')
        for path in [
                'requests/%s' % number,
                'requests/%s/report.pdf' % number,
                'requests/%s/files/%s' % (number, attachment_id),
                'requests/%s/files/%s' % (own, attachment_id),
                'forfaits/%s/statement.pdf' % credit_id,
                'requests/MAJ-0000-0000',
                ]:
            with self.subTest(path=path):
                response = client.get(self.url(path))
                self.assertEqual(response.status_code, 404)
                self.assertNotIn("Secret", self.text(response))
        for path in ['requests/%s/messages' % number,
                'requests/%s/files' % number]:
            with self.subTest(path=path):
                response = self.post(
                    client, path, {'message': "Intrusion"}, page='')
                self.assertEqual(response.status_code, 404)
        for path in ['', 'requests', 'forfaits',
                'requests?q=' + urllib.parse.quote(number)]:
            with self.subTest(path=path):
                page = self.text(client.get(self.url(path)))
                self.assertNotIn("Secret", page)
                self.assertNotIn('/requests/' + number, page)
        with Transaction().start(DB_NAME, 0):
            Message = Pool().get('ir.chat.message')
            self.assertFalse(Message.search([('content', '=', "Intrusion")]))

    def test_requests_list(self):
        "The list filters by status, searches and pages"
        party = create_client("Traiteur Créole", 'traiteur@creole.mq')

        def requests():
            Request = Pool().get('forfait.request')
            Request.create([{
                        'party': party, 'subject': "Menu %02d" % i,
                        'category': 'content'} for i in range(25)])
            cancelled, = Request.create([{
                        'party': party, 'subject': "Ancien menu"}])
            Request.cancel([cancelled])
        in_company(requests)
        client = self.login('traiteur@creole.mq')
        page = self.text(client.get(self.url('requests')))
        self.assertIn("26 demande(s)", page)
        self.assertIn("Page 1 sur 2", page)
        self.assertEqual(page.count('class="subject"'), 20)
        page = self.text(client.get(self.url('requests?page=2')))
        self.assertEqual(page.count('class="subject"'), 6)
        page = self.text(client.get(self.url('requests?state=cancelled')))
        self.assertIn("Ancien menu", page)
        self.assertIn("1 demande(s)", page)
        page = self.text(client.get(self.url('requests?q=menu+07')))
        self.assertIn("Menu 07", page)
        self.assertIn("1 demande(s)", page)
        page = self.text(client.get(self.url('requests?page=x&state=zz')))
        self.assertIn("26 demande(s)", page)

    def test_dashboard_projection_and_overdraft(self):
        "The gauge, the projection and the overdraft alert"
        party = create_client("Agence Zandoli", 'zandoli@agence.mq', hours=2)
        close_request(party, HOUR)
        client = self.login('zandoli@agence.mq')
        page = self.text(client.get(self.url()))
        self.assertIn("À votre rythme, vos heures durent jusqu", page)
        self.assertIn('class="used"', page)
        close_request(party, 2 * HOUR)
        page = self.text(client.get(self.url()))
        self.assertIn("Vous avez utilisé 1 h de plus que votre forfait", page)
        self.assertIn("Vos heures sont épuisées.", page)

    def test_query_counts(self):
        "The dashboard and the list need as many queries for 2 requests as 30"
        small = create_client("Fleuriste Anthurium", 'fleurs@anthurium.mq')
        big = create_client("Grand Hôtel", 'hotel@grand.mq', hours=100)
        close_request(small, HOUR)

        def history():
            pool = Pool()
            Request = pool.get('forfait.request')
            Line = pool.get('timesheet.line')
            Employee = pool.get('company.employee')
            employee, = Employee.search([])
            requests = Request.create([{
                        'party': big, 'subject': "Page %s" % i}
                    for i in range(30)])
            Request.open(requests)
            Line.create([{
                        'forfait_request': r.id, 'duration': HOUR,
                        'employee': employee.id, 'description': "Texte"}
                    for r in requests for _ in range(3)])
            Request.done(requests)
        in_company(history)
        counts = {}
        for email in ['fleurs@anthurium.mq', 'hotel@grand.mq']:
            client = self.login(email)
            for path in ['', 'requests', 'forfaits']:
                client.get(self.url(path))  # warm the caches
                with count_queries(outside=True) as queries:
                    response = client.get(self.url(path))
                self.assertEqual(response.status_code, 200)
                counts[email, path] = len(queries)
        for path in ['', 'requests', 'forfaits']:
            with self.subTest(path=path):
                self.assertGreater(counts['hotel@grand.mq', path], 0)
                self.assertEqual(
                    counts['fleurs@anthurium.mq', path],
                    counts['hotel@grand.mq', path])

    def test_english(self):
        "The portal speaks English when asked and remembers it"
        create_client("Dive Center", 'dive@center.mq', hours=5, language='en')
        client = self.login('dive@center.mq')
        self.assertIn("Hello, Dive Center", self.text(client.get(self.url())))
        page = self.text(client.get(self.url('?lang=fr')))
        self.assertIn("Bonjour, Dive Center", page)
        self.assertIn("Bonjour", self.text(client.get(self.url('requests/new'
                        ).replace('requests/new', ''))))

    def test_forfaits_and_statement(self):
        "Credits with their statement, and invoices"
        party = create_client("Ti Punch Bar", 'bar@tipunch.mq', hours=12)
        close_request(party, HOUR)
        client = self.login('bar@tipunch.mq')
        page = self.text(client.get(self.url('forfaits')))
        self.assertIn("12 h", page)
        self.assertIn("11 h", page)
        link = re.search(r'href="([^"]+statement\.pdf)"', page).group(1)
        statement = client.get(link)
        self.assertEqual(statement.status_code, 200)
        self.assertTrue(statement.get_data().startswith(b'%PDF'))

    def test_subscribe(self):
        "Subscribing creates a quotation and tells the client and the staff"
        party = create_client("Surf Shop", 'surf@shop.mq', hours=0)

        service = in_company(set_prices)
        client = self.login('surf@shop.mq')
        page = self.text(client.get(self.url('subscribe')))
        self.assertIn("2 h par mois", page)
        self.assertIn("24 h créditées pour l'année", page)
        self.assertIn("TVA 220,00", page)
        self.assertIn("320,00\xa0usd TTC", page)
        response = self.post(client, 'subscribe', {'service': '999999'})
        self.assertEqual(response.status_code, 400)
        response = self.post(client, 'subscribe', {'service': str(service)})
        self.assertEqual(response.status_code, 303, self.text(response))
        with Transaction().start(DB_NAME, 0):
            Subscription = Pool().get('sale.subscription')
            subscription, = Subscription.search([('party', '=', party)])
            self.assertEqual(subscription.state, 'quotation')
            line, = subscription.lines
            self.assertEqual(line.service.id, service)
        recipients = sorted(str(m['To']) for m in self.new_mail())
        self.assertEqual(len(recipients), 2)
        self.assertIn('surf@shop.mq', ' '.join(recipients))
        self.assertIn('update@webservice.mq', ' '.join(recipients))
        page = self.text(client.get(self.url('forfaits')))
        self.assertIn("En attente de confirmation", page)
        response = self.post(client, 'subscribe', {'service': str(service)})
        self.assertEqual(response.status_code, 400)

        def confirm():
            Subscription = Pool().get('sale.subscription')
            Subscription.run(Subscription.search([('party', '=', party)]))
        in_company(confirm)
        page = self.text(client.get(self.url()))
        self.assertIn("24 h", page)
        self.assertNotIn("Vous n'avez pas de forfait en cours.", page)

    def test_invitation_and_password_reset(self):
        "The invitation sets the password; forgetting it sends a new link"
        def party():
            Party = Pool().get('party.party')
            party = Party(name="Rhumerie", contact_mechanisms=[
                    {'type': 'email', 'value': 'Chef@Rhumerie.mq'}])
            party.save()
            return party.id
        party_id = in_company(party)

        def invite():
            pool = Pool()
            Invite = pool.get(
                'party.party.forfait_portal_invite', type='wizard')
            Party = pool.get('party.party')
            session_id, _, _ = Invite.create()
            with Transaction().set_context(
                    active_model='party.party', active_id=party_id,
                    active_ids=[party_id]):
                Invite.execute(session_id, {}, 'start')
                Invite.execute(session_id, {'start': {
                            'party': party_id,
                            'contact': Party(party_id).contact_mechanisms[
                                0].id}}, 'invite')
        in_company(invite)
        mail, = self.new_mail()
        link = re.search(r'(http://\S+)', mail.get_body().get_content()
            ).group(1)
        path = urllib.parse.urlsplit(link)
        client = self.client()
        page = client.get(path.path + '?' + path.query)
        self.assertEqual(page.status_code, 200)
        query = dict(urllib.parse.parse_qsl(path.query))
        response = client.post(self.url('password/reset'), data=dict(
                query, password='a', confirm='b', csrf_token=csrf(page)))
        self.assertIn("Les deux mots de passe sont différents.",
            self.text(response))
        response = client.post(self.url('password/reset'), data=dict(
                query, password=PASSWORD, confirm=PASSWORD,
                csrf_token=csrf(page)))
        self.assertEqual(response.status_code, 303)
        self.login('chef@rhumerie.mq')
        response = client.post(self.url('password/reset'), data=dict(
                query, password=PASSWORD, confirm=PASSWORD,
                csrf_token=csrf(page)))
        self.assertIn("Ce lien n'est pas valide", self.text(response))

        self.sent = len(self.smtp.messages)
        for email in ['chef@rhumerie.mq', 'nobody@rhumerie.mq']:
            response = self.post(
                self.client(), 'password/forgot', {'email': email})
            self.assertEqual(response.status_code, 303)
            self.assertIn('notice=password_sent', response.location)
        mail, = self.new_mail()
        self.assertEqual(mail['To'], 'chef@rhumerie.mq')

    def test_reset_ends_other_sessions(self):
        "A password reset or change signs out every other browser"
        create_client("Librairie Alizés", 'livres@alizes.mq', hours=0)
        old = self.login('livres@alizes.mq')
        self.assertEqual(old.get(self.url('session')).status_code, 200)

        def link():
            User = Pool().get('web.user')
            user, = User.search([('email', '=', 'livres@alizes.mq')])
            user.send_password_link()
            return user.reset_password_token
        token = in_company(link)
        query = {'email': 'livres@alizes.mq', 'token': token}
        client = self.client()
        page = client.get(
            self.url('password/reset?' + urllib.parse.urlencode(query)))
        new = 'Ti-Bo-Bwa-2026'
        response = client.post(self.url('password/reset'), data=dict(
                query, password=new, confirm=new, csrf_token=csrf(page)))
        self.assertEqual(response.status_code, 303, self.text(response))
        self.assertEqual(old.get(self.url('session')).status_code, 401)
        self.assertEqual(old.get(self.url()).status_code, 303)

        current = self.login('livres@alizes.mq', new)
        other = self.login('livres@alizes.mq', new)

        def change():
            User = Pool().get('web.user')
            user, = User.search([('email', '=', 'livres@alizes.mq')])
            with Transaction().set_context(
                    web_session=current.get_cookie(
                        'forfait_session',
                        path='/%s/portal' % self.db_name).value):
                User.write([user], {'password': 'Zandoli-Vert-2027'})
        in_company(change)
        self.assertEqual(other.get(self.url('session')).status_code, 401)
        self.assertEqual(current.get(self.url('session')).status_code, 200)

    def test_login_unknown_address_checks_a_hash(self):
        "An unknown address costs a password check, as a real one does"
        create_client("Cave à Rhum", 'cave@rhum.mq', hours=0)
        checked = []
        with Transaction().start(DB_NAME, 0):
            User = Pool().get('web.user')
        original = User.check_password.__func__

        def check_password(cls, password, hash_):
            checked.append(hash_)
            return original(cls, password, hash_)
        User.check_password = classmethod(check_password)
        self.addCleanup(delattr, User, 'check_password')
        for email in ['cave@rhum.mq', 'personne@rhum.mq']:
            client = self.client()
            page = client.get(self.url('login'))
            response = client.post(self.url('login'), data={
                    'email': email, 'password': 'wrong',
                    'csrf_token': csrf(page)})
            self.assertEqual(response.status_code, 401)
        self.assertEqual(len(checked), 2)
        real, dummy = checked
        self.assertTrue(dummy)
        self.assertNotEqual(real, dummy)
        self.assertEqual(real.split('$')[1], dummy.split('$')[1])

    def test_login_lock_is_bounded(self):
        """A locked address is refused at once without counting the attempt,
        is open again when its failures are older than the session timeout,
        and a password reset opens it at once"""
        create_client("Ferme Aquacole", 'ferme@aqua.mq', hours=0)

        def attempt(password):
            client = self.client()
            page = client.get(self.url('login'))
            return client.post(self.url('login'), data={
                    'email': 'ferme@aqua.mq', 'password': password,
                    'csrf_token': csrf(page)}).status_code

        def attempts():
            with Transaction().start(DB_NAME, 0):
                Attempt = Pool().get('web.user.authenticate.attempt')
                return Attempt.search_count([('login', '=', 'ferme@aqua.mq')])

        def age(seconds):
            with Transaction().start(DB_NAME, 0) as transaction:
                Attempt = Pool().get('web.user.authenticate.attempt')
                table = Attempt.__table__()
                transaction.connection.cursor().execute(*table.update(
                        [table.create_date],
                        [dt.datetime.now() - dt.timedelta(seconds=seconds)],
                        where=table.login == 'ferme@aqua.mq'))
                transaction.commit()
        self.assertEqual([attempt('wrong'), attempt('wrong')], [401, 401])
        counted = attempts()
        self.assertEqual(counted, 2)
        self.assertEqual(
            [attempt('wrong'), attempt('wrong'), attempt(PASSWORD)],
            [429, 429, 429])
        self.assertEqual(attempts(), counted)

        timeout = config.getint('session', 'timeout')
        age(timeout - 5)
        self.assertEqual(attempt(PASSWORD), 429)
        age(timeout + 1)
        self.assertEqual(attempt(PASSWORD), 303)

        self.assertEqual([attempt('x'), attempt('x'), attempt('x')],
            [401, 401, 429])

        def link():
            User = Pool().get('web.user')
            user, = User.search([('email', '=', 'ferme@aqua.mq')])
            user.send_password_link()
            return user.reset_password_token
        query = {'email': 'ferme@aqua.mq', 'token': in_company(link)}
        client = self.client()
        page = client.get(
            self.url('password/reset?' + urllib.parse.urlencode(query)))
        response = client.post(self.url('password/reset'), data=dict(
                query, password=PASSWORD, confirm=PASSWORD,
                csrf_token=csrf(page)))
        self.assertEqual(response.status_code, 303)
        self.assertEqual(attempt(PASSWORD), 303)

    def test_reset_wrong_token_does_not_lock(self):
        "Wrong reset links are refused without locking the login"
        create_client("Kiosque", 'kiosque@plage.mq', hours=0)
        client = self.client()
        for _ in range(4):
            page = client.get(self.url(
                    'password/reset?email=kiosque@plage.mq&token=bad'))
            response = client.post(self.url('password/reset'), data={
                    'email': 'kiosque@plage.mq', 'token': 'bad',
                    'password': PASSWORD, 'confirm': PASSWORD,
                    'csrf_token': csrf(page)})
            self.assertIn("Ce lien n'est pas valide", self.text(response))
        self.login('kiosque@plage.mq')

    def test_out_of_range_ids(self):
        "Ids no record can have are 404, with no database text"
        party = create_client("Marina", 'port@marina.mq', hours=1)
        number = close_request(party, HOUR)
        client = self.login('port@marina.mq')
        huge = '9' * 24
        for path in [
                'forfaits/%s/statement.pdf' % huge,
                'forfaits/0/statement.pdf',
                'requests/%s/files/%s' % (number, huge),
                'invoices/%s.pdf' % huge,
                ]:
            with self.subTest(path=path):
                response = client.get(self.url(path))
                self.assertEqual(response.status_code, 404)
                page = self.text(response)
                self.assertIn("Page introuvable", page)
                self.assertNotIn("int", page.split('<main>')[1].lower()
                    .replace('introuvable', ''))

    def test_error_pages(self):
        "404, 405 and 500 are the portal's own French page, with a way back"
        create_client("Boucherie", 'boucherie@bourg.mq', hours=0)
        client = self.login('boucherie@bourg.mq')
        cases = [
            ('get', 'nothing/here', 404, "Page introuvable"),
            ('get', 'logout', 405, "Action impossible"),
            ('get', '_test/error', 500, "Une erreur est survenue"),
            ]
        for method, path, status, title in cases:
            with self.subTest(path=path, method=method):
                response = getattr(client, method)(self.url(path))
                self.assertEqual(response.status_code, status)
                page = self.text(response)
                self.assertIn(title, page)
                self.assertIn('href="/%s/portal/"' % self.db_name, page)
                self.assertIn('lang="fr"', page)
                for secret in ["Secret", "Traceback", "ZeroDivision"]:
                    self.assertNotIn(secret, page)
        self.assertIn('POST', client.get(self.url('logout')).headers['Allow'])
        anonymous = self.client().get(self.url('nothing/here'))
        self.assertEqual(anonymous.status_code, 404)
        self.assertIn("Page introuvable", self.text(anonymous))
        with Transaction().start(DB_NAME, 0):
            Party = Pool().get('party.party')
            self.assertFalse(Party.search([('name', '=', "Secret party")]))

    def test_next_control_characters(self):
        "A next with CR, LF or another control character goes home"
        create_client("Quincaillerie", 'quinc@bourg.mq', hours=0)
        client = self.login('quinc@bourg.mq')
        base = '/%s/portal/' % self.db_name
        for next_ in [base + 'requests\r\nSet-Cookie: a=b',
                base + 'requests\x00', base + 'requests\tx',
                base + 'requests\x7f']:
            with self.subTest(next=next_):
                response = client.get(self.url(
                        'login?' + urllib.parse.urlencode({'next': next_})))
                self.assertEqual(response.status_code, 303)
                self.assertEqual(
                    urllib.parse.urlsplit(response.location).path, base)
                self.assertNotIn('a=b', str(response.headers))
                anonymous = self.client()
                page = anonymous.get(self.url('login'))
                response = anonymous.post(self.url('login'), data={
                        'email': 'quinc@bourg.mq', 'password': PASSWORD,
                        'next': next_, 'csrf_token': csrf(page)})
                self.assertEqual(response.status_code, 303)
                self.assertEqual(
                    urllib.parse.urlsplit(response.location).path, base)
        response = client.get(self.url(
                'login?next=' + urllib.parse.quote(base + 'requests')))
        self.assertTrue(response.location.endswith(base + 'requests'))

    def test_pack_in_overdraft(self):
        """A client in overdraft orders a 5 h pack: credited at once for 12
        months, the overdraft taken first, a draft invoice for the agency"""
        party = create_client("Salon Kréyol", 'salon@kreyol.mq', hours=2)
        close_request(party, 3 * HOUR)
        in_company(set_prices)
        with Transaction().start(DB_NAME, 0):
            ModelData = Pool().get('ir.model.data')
            pack = ModelData.get_id('webservice_forfait', 'product_pack_5h')
            forfait = ModelData.get_id(
                'webservice_forfait', 'product_forfait_2h')
        client = self.login('salon@kreyol.mq')
        self.assertIn("Vous avez utilisé 1 h de plus",
            self.text(client.get(self.url())))
        page = self.text(client.get(self.url('subscribe')))
        self.assertIn("Heures supplémentaires", page)
        self.assertIn("5 h de plus", page)
        self.assertIn("300,00", page)
        self.assertIn("360,00\xa0usd TTC", page)

        for choice in ['999999', str(forfait), '', '1 OR 1=1']:
            with self.subTest(choice=choice):
                response = self.post(
                    client, 'packs', {'product': choice}, page='subscribe')
                self.assertEqual(response.status_code, 400)
                self.assertIn(
                    "Choisissez l'un des packs proposés", self.text(response))
        self.sent = len(self.smtp.messages)
        response = self.post(
            client, 'packs', {'product': str(pack)}, page='subscribe')
        self.assertEqual(response.status_code, 303, self.text(response))
        self.assertIn('notice=pack_ordered', response.location)

        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Credit = pool.get('forfait.credit')
            Consumption = pool.get('forfait.consumption')
            Date = pool.get('ir.date')
            credit, = Credit.search([
                    ('party', '=', party), ('origin', '!=', None)])
            today = Date.today()
            self.assertEqual(credit.hours, 5 * HOUR)
            self.assertEqual(credit.start_date, today)
            self.assertEqual(credit.end_date, year_end(today))
            self.assertEqual(credit.consumed, HOUR)
            self.assertEqual(credit.remaining, 4 * HOUR)
            overdraft = Consumption.search([
                    ('party', '=', party), ('credit', '=', None)])
            self.assertEqual(
                sum((c.duration for c in overdraft), dt.timedelta()),
                dt.timedelta())
            line = credit.origin
            self.assertEqual(line.product.id, pack)
            invoice = line.invoice
            self.assertEqual(invoice.state, 'draft')
            self.assertEqual(invoice.type, 'out')
            self.assertEqual(invoice.party.id, party)
            self.assertEqual(invoice.untaxed_amount, Decimal('300'))
            self.assertEqual(invoice.tax_amount, Decimal('60'))
        recipients = sorted(str(m['To']) for m in self.new_mail())
        self.assertEqual(len(recipients), 2)
        self.assertIn('salon@kreyol.mq', ' '.join(recipients))
        self.assertIn('update@webservice.mq', ' '.join(recipients))

        page = self.text(client.get(response.location))
        self.assertIn("Vos heures supplémentaires sont créditées", page)
        self.assertNotIn("Vous avez utilisé", page)

    def test_invoices(self):
        """The client's posted invoices with their due date, whether they
        are paid, and their PDF; not the drafts nor another client's"""
        party = create_client("Studio Photo", 'studio@photo.mq', hours=0)
        other = create_client("Agence Voisine", 'voisine@agence.mq', hours=0)
        in_company(set_prices)
        posted, = pack_invoices(party)
        draft, = pack_invoices(party, post=False)
        others, = pack_invoices(other)
        client = self.login('studio@photo.mq')
        response = client.get(self.url('forfaits'))
        page = self.text(response)
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Invoice = pool.get('account.invoice')
            number = Invoice(posted).number
            today = pool.get('ir.date').today()
        self.assertIn(number, page)
        self.assertIn(">À payer<", page)
        self.assertIn(format_date(today, 'long', locale='fr'), page)
        self.assertIn('invoices/%s.pdf' % posted, page)
        self.assertNotIn('invoices/%s.pdf' % draft, page)
        pdf = client.get(self.url('invoices/%s.pdf' % posted))
        self.assertEqual(pdf.status_code, 200)
        self.assertEqual(pdf.headers['Content-Type'], 'application/pdf')
        self.assertTrue(pdf.get_data().startswith(b'%PDF'))
        for invoice in [draft, others]:
            with self.subTest(invoice=invoice):
                response = client.get(self.url('invoices/%s.pdf' % invoice))
                self.assertEqual(response.status_code, 404)

        with count_queries(outside=True) as queries:
            client.get(self.url('forfaits'))
        few = list(queries)
        pack_invoices(party, count=3)
        client.get(self.url('forfaits'))
        with count_queries(outside=True) as queries:
            page = self.text(client.get(self.url('forfaits')))
        self.assertEqual(
            len(re.findall(r'href="[^"]*/invoices/\d+\.pdf"', page)), 4)
        self.assertEqual(len(queries), len(few))

        def pay():
            pool = Pool()
            Invoice = pool.get('account.invoice')
            invoice = Invoice(posted)
            Invoice.write([invoice], {'state': 'paid'})
        in_company(pay)
        page = self.text(client.get(self.url('forfaits')))
        self.assertEqual(page.count(">Payée<"), 1)
        self.assertEqual(page.count(">À payer<"), 3)

    def test_open_request_time_logged(self):
        "An open request shows the time logged so far, goodwill marked once"
        party = create_client("Atelier Bèlè", 'atelier@bele.mq')

        def open_request():
            pool = Pool()
            Request = pool.get('forfait.request')
            Line = pool.get('timesheet.line')
            Employee = pool.get('company.employee')
            employee, = Employee.search([])
            request, = Request.create([{
                        'party': party, 'subject': "Agenda des cours"}])
            Request.open([request])
            Line.create([{
                        'forfait_request': request.id,
                        'duration': dt.timedelta(hours=1, minutes=30),
                        'employee': employee.id,
                        'description': "Mise en page de l'agenda"}, {
                        'forfait_request': request.id,
                        'duration': dt.timedelta(minutes=20),
                        'employee': employee.id, 'billable': False,
                        'description': "Appel de conseil"}])
            return request.number
        number = in_company(open_request)
        client = self.login('atelier@bele.mq')
        page = self.text(client.get(self.url('requests/' + number)))
        self.assertIn("Temps passé jusqu'ici", page)
        self.assertIn("1 h 30", page)
        self.assertIn("Mise en page de l'agenda", page)
        self.assertEqual(page.lower().count('offert'), 1)
        self.assertIn(format_date(
                dt.date.today(), 'long', locale='fr').split()[1], page)

    def test_new_request_once_per_screen(self):
        "The new request button is shown once on each page"
        create_client("Épicerie Fine", 'epicerie@fine.mq')
        client = self.login('epicerie@fine.mq')
        for path in ['', 'requests', 'forfaits', 'subscribe']:
            with self.subTest(path=path):
                page = self.text(client.get(self.url(path)))
                self.assertEqual(page.count('>Nouvelle demande<'), 1)
