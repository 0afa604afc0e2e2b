"""One client, every surface: the same figures with the same labels

The client has two credits, an overdraft carried onto the first, a request
done ten days ago (its report is of that day), one done today and one open
with time logged. Its figures are read on the staff's party and credits, the
portal's dashboard, gauges and credits table, the acknowledgement, an alert
and the report e-mail from a real SMTP server, and the update report and
statement PDFs (pdftotext), printed from an English staff session."""
import datetime as dt
import re
import shutil
import unittest

from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from . import test_portal as portal
from .test_notification import compact, pdf_text

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
EMAIL = 'lucette@chezlucette.mq'

# today: 12 h + 24 h credited; 1 h carried, 2 h and 0 h 30 done since;
# 0 h 40 logged on an open request, billed rounded up to 0 h 45
TODAY = [
    ("Heures créditées", "36 h"),
    ("Heures décomptées", "3 h 30"),
    ("Heures restantes", "32 h 30"),
    ("Heures en cours", "0 h 45"),
    ("Heures disponibles", "31 h 45"),
    ]
# the day the past request was done: the carry and its 2 h
PAST = [
    ("Heures créditées", "36 h"),
    ("Heures décomptées", "3 h"),
    ("Heures restantes", "33 h"),
    ]


@unittest.skipUnless(shutil.which('pdftotext'), "pdftotext is missing")
class FiguresTestCase(RouteTestCase):
    "Every surface a client or the staff reads agrees"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        portal.use_smtp_server(cls)
        super().setUpClass()

    setUpDatabase = classmethod(
        portal.PortalTestCase.setUpDatabase.__func__)

    def setUp(self):
        super().setUp()
        self.sent = len(self.smtp.messages)

    def new_mail(self):
        return self.smtp.messages[self.sent:]

    def build(self):
        "The client's history; return the ids and dates that matter"
        party_id = portal.create_client(
            "Boulangerie Chez Lucette", EMAIL, hours=0)
        values = {}

        def history():
            pool = Pool()
            Party = pool.get('party.party')
            Credit = pool.get('forfait.credit')
            Request = pool.get('forfait.request')
            Consumption = pool.get('forfait.consumption')
            Line = pool.get('timesheet.line')
            Employee = pool.get('company.employee')
            employee, = Employee.search([])
            party = Party(party_id)
            today = pool.get('ir.date').today()

            def request(subject, duration, done=True):
                request, = Request.create([{
                            'party': party.id, 'subject': subject}])
                Request.open([request])
                Line.create([{
                            'forfait_request': request.id,
                            'duration': duration, 'employee': employee.id,
                            'description': "Mise à jour"}])
                if done:
                    Request.done([request])
                return request

            # done before any credit: 1 h of overdraft
            overdraft = request("Carte de Noël", HOUR)
            # two credits at once: the one ending first takes the 1 h
            Credit.create([{
                        'party': party.id, 'company': party_company(),
                        'hours': hours, 'reason': "Reprise",
                        'start_date': today - dt.timedelta(days=15),
                        'end_date': today + dt.timedelta(days=days)}
                    for hours, days in [(12 * HOUR, 150), (24 * HOUR, 349)]])
            past = request("Menu de la Saint-Sylvestre", 2 * HOUR)
            # the history is dated as it happened: consumptions are
            # immutable through the ORM
            consumption = Consumption.__table__()
            req = Request.__table__()
            cursor = Transaction().connection.cursor()
            for where, days in [
                    ((consumption.request == overdraft.id)
                        & (consumption.kind == 'posting'), 20),
                    (consumption.kind == 'carry', 15),
                    (consumption.request == past.id, 10)]:
                cursor.execute(*consumption.update(
                        [consumption.date], [today - dt.timedelta(days=days)],
                        where=where))
            cursor.execute(*req.update(
                    [req.done_date], [today - dt.timedelta(days=10)],
                    where=req.id.in_([past.id])))
            request("Horaires d'hiver", 30 * MINUTE)
            open_ = request("Photos de la vitrine", 40 * MINUTE, done=False)
            values.update(
                party=party.id, past=past.id, open=open_.id, today=today,
                past_date=today - dt.timedelta(days=10))

        def party_company():
            return Pool().get('company.company').search([])[0].id
        portal.in_company(history)
        self.sent = len(self.smtp.messages)
        return values

    def french_date(self, date):
        with Transaction().start(DB_NAME, 0):
            Lang = Pool().get('ir.lang')
            return Lang.get('fr').strftime(date)

    def assertFigures(self, text, figures, separator=''):
        "Each label is followed by its value (blanks left out)"
        text = compact(text)
        for label, value in figures:
            with self.subTest(label=label):
                self.assertIn(
                    compact(label + separator + value), text)

    def test_every_surface(self):
        v = self.build()
        today = "Vos heures au %s" % self.french_date(v['today'])
        past = "Vos heures au %s, à la fin de cette mise à jour" % (
            self.french_date(v['past_date']))

        # the staff's party and credits, in h:mm, the same labels
        def staff():
            pool = Pool()
            Party = pool.get('party.party')
            Credit = pool.get('forfait.credit')
            party = Party(v['party'])
            self.assertEqual(
                [party.forfait_hours, party.forfait_consumed,
                    party.forfait_remaining, party.forfait_pending,
                    party.forfait_available, party.forfait_overdraft],
                [36 * HOUR, 3 * HOUR + 30 * MINUTE,
                    32 * HOUR + 30 * MINUTE, 45 * MINUTE,
                    31 * HOUR + 45 * MINUTE, dt.timedelta()])
            credits = Credit.search(
                [('party', '=', party.id)], order=[('end_date', 'ASC')])
            self.assertEqual(
                [(c.hours, c.consumed, c.remaining) for c in credits],
                [(12 * HOUR, 3 * HOUR + 30 * MINUTE, 8 * HOUR + 30 * MINUTE),
                    (24 * HOUR, dt.timedelta(), 24 * HOUR)])
            # the credits' remaining hours less the overdraft
            self.assertEqual(
                sum((c.remaining for c in credits), dt.timedelta())
                - party.forfait_overdraft, party.forfait_remaining)
            with Transaction().set_context(language='fr'):
                labels = {
                    n: f['string'] for n, f in Party.fields_get([
                            'forfait_hours', 'forfait_consumed',
                            'forfait_remaining', 'forfait_pending',
                            'forfait_available']).items()}
                credit_labels = [
                    f['string'] for f in Credit.fields_get([
                            'hours', 'consumed', 'remaining']).values()]
            self.assertEqual(
                sorted(labels.values()), sorted(l for l, _ in TODAY))
            self.assertEqual(
                sorted(credit_labels), sorted(l for l, _ in PAST))
        portal.in_company(staff)

        # the portal: summary, gauges, credits table
        client = self.client()
        page = client.get(self.url('login'))
        client.post(self.url('login'), data={
                'email': EMAIL, 'password': portal.PASSWORD,
                'csrf_token': portal.csrf(page)})
        dashboard = client.get(self.url()).get_data(as_text=True)
        self.assertIn(today, dashboard)
        summary = re.findall(
            r'<span class="figure[^"]*">([^<]*)</span>'
            r'<span class="label">([^<]*)</span>', dashboard)
        self.assertEqual([(l, f) for f, l in summary], TODAY)
        gauges = re.findall(
            r'<dt>(?:<span class="dot \w+"></span>)?([^<]*)</dt>'
            r'<dd[^>]*>([^<]*)</dd>', dashboard)
        self.assertEqual(gauges, [
                ("Heures créditées", "12 h"), ("Heures décomptées", "3 h 30"),
                ("Heures en cours", "0 h 45"),
                ("Heures restantes", "8 h 30"),
                ("Heures créditées", "24 h"), ("Heures décomptées", "0 h"),
                ("Heures en cours", "0 h"), ("Heures restantes", "24 h")])
        forfaits = client.get(self.url('forfaits')).get_data(as_text=True)
        cells = re.findall(
            r'<td data-label="([^"]*)" class="num">([^<]*)</td>', forfaits)
        self.assertEqual(sorted(cells), sorted([
                    ("Heures créditées", "24 h"),
                    ("Heures décomptées", "0 h"),
                    ("Heures restantes", "24 h"),
                    ("Heures créditées", "12 h"),
                    ("Heures décomptées", "3 h 30"),
                    ("Heures restantes", "8 h 30")]))

        # the e-mails: acknowledgement and alert of today, the report of
        # the past request as of its day
        def send():
            pool = Pool()
            Request = pool.get('forfait.request')
            Credit = pool.get('forfait.credit')
            Request(v['open']).acknowledge(EMAIL)
            credit, = Credit.search([
                    ('party', '=', v['party'])],
                order=[('end_date', 'ASC')], limit=1)
            credit.alert('threshold', 25)
            Request.send_update_report([Request(v['past'])])
        portal.in_company(send)
        mails = {str(m['Subject']): m for m in self.new_mail()}
        self.assertEqual(len(mails), 3, list(mails))
        ack, = [m for s, m in mails.items() if 'Photos' in s]
        alert, = [
            m for s, m in mails.items()
            if 'Photos' not in s and 'Saint' not in s]
        report, = [m for s, m in mails.items() if 'Saint-Sylvestre' in s]
        for mail in [ack, alert]:
            body = mail.get_body().get_content()
            self.assertIn(today, body)
            self.assertFigures(body, TODAY, separator=':')
        body = report.get_body().get_content()
        self.assertIn(past, body)
        self.assertFigures(body, PAST, separator=':')
        self.assertNotIn("Heures en cours", body)

        # the PDFs: the e-mailed report, and both documents printed by an
        # English-speaking staff member, come out in French
        attachment, = report.iter_attachments()
        self.assertFigures(pdf_text(attachment.get_content()), PAST)

        def print_():
            pool = Pool()
            UpdateReport = pool.get(
                'forfait.request.update_report', type='report')
            Statement = pool.get('forfait.party.statement', type='report')
            with Transaction().set_context(language='en'):
                _, update, _, _ = UpdateReport.execute([v['past']], {})
                _, statement, _, _ = Statement.execute([v['party']], {})
            return pdf_text(update), pdf_text(statement)
        update, statement = portal.in_company(print_)
        self.assertIn("RAPPORT DE MISE À JOUR", update.upper())
        self.assertNotIn("Update report", update)
        self.assertIn(compact(past.upper()), compact(update.upper()))
        self.assertFigures(update, PAST)
        self.assertNotIn("Heures en cours", update)
        self.assertNotIn("Time billed", statement)
        self.assertIn(compact(today.upper()), compact(statement.upper()))
        self.assertFigures(statement, TODAY)
        # the credit's own block, with the same labels
        self.assertIn("CECRÉDIT", compact(statement.upper()))
        self.assertFigures(statement, [
                ("Heures créditées", "12 h"), ("Heures décomptées", "3 h 30"),
                ("Heures restantes", "8 h 30"), ("Heures créditées", "24 h"),
                ("Heures restantes", "24 h")])
        self.assertNotIn("Décompté0h", compact(statement))

        # the portal's PDFs are the same documents
        with Transaction().start(DB_NAME, 0):
            number = Pool().get('forfait.request')(v['past']).number
        pdf = client.get(self.url('requests/%s/report.pdf' % number))
        self.assertEqual(pdf.status_code, 200)
        self.assertFigures(pdf_text(pdf.get_data()), PAST)

    def url(self, path=''):
        return '/%s/portal/%s' % (self.db_name, path)


del RouteTestCase
