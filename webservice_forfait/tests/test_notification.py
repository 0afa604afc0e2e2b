"Update reports, statements and alerts, with real PDFs and a real SMTP"
import datetime as dt
import re
import shutil
import subprocess
import unittest

from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction

from .test_inbound_email import run_committed, use_smtp_server

HOUR = dt.timedelta(hours=1)


def pdf_text(data):
    "Return the text of a PDF as pdftotext reads it"
    return subprocess.run(
        ['pdftotext', '-layout', '-', '-'], input=bytes(data),
        capture_output=True, check=True).stdout.decode()


def compact(text):
    "Return text without its blanks: pdftotext's layout moves them"
    return re.sub(r'\s', '', text)


class NotificationTestCase(RouteTestCase):
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            create_employee(company, "Marie-Line Joseph")
            config = Config(1)
            config.email_sender = 'Web Service <update@webservice.mq>'
            config.portal_url = 'https://portail.webservice.mq'
            config.save()

    def setUp(self):
        super().setUp()
        self.sent = len(self.smtp.messages)

    def new_mail(self):
        return self.smtp.messages[self.sent:]

    def client(self, name, email='client@example.mq', hours=20):
        "Create in a committed transaction a client with a credit"
        def create():
            pool = Pool()
            Party = pool.get('party.party')
            Credit = pool.get('forfait.credit')
            Company = pool.get('company.company')
            company, = Company.search([])
            party = Party(name=name, contact_mechanisms=[
                    {'type': 'email', 'value': email}] if email else [])
            party.save()
            today = pool.get('ir.date').today()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': hours * HOUR, 'start_date': today,
                        'end_date': today + dt.timedelta(days=364),
                        'reason': "Test"}])
            self.party_id = party.id
        self.in_company(create)
        return self.party_id

    def in_company(self, func):
        def run():
            Company = Pool().get('company.company')
            company, = Company.search([])
            with set_company(company):
                func()
        run_committed(run)

    def done(self, party_id, duration, subject="Mise à jour"):
        "Close, committed, a request of party with duration logged"
        def close():
            pool = Pool()
            Request = pool.get('forfait.request')
            Line = pool.get('timesheet.line')
            Employee = pool.get('company.employee')
            employee, = Employee.search([])
            request, = Request.create([{
                        'party': party_id, 'subject': subject}])
            Request.open([request])
            Line.create([{
                        'forfait_request': request.id, 'duration': duration,
                        'employee': employee.id, 'description': "Texte"}])
            Request.done([request])
            self.request_id = request.id
        self.in_company(close)
        return self.request_id

    def alerts(self, party_id):
        with Transaction().start(DB_NAME, 0):
            Alert = Pool().get('forfait.credit.alert')
            return sorted(
                (a.kind, a.threshold) for a in Alert.search(
                    [('credit.party', '=', party_id)]))

    def test_thresholds_once(self):
        "80 % and 100 % are told once per credit, even after a reversal"
        party = self.client("Boulangerie Chez Lucette", hours=20)
        self.done(party, 16 * HOUR)
        self.assertEqual(self.alerts(party), [('threshold', 80)])
        request = self.done(party, 5 * HOUR)
        self.assertEqual(
            self.alerts(party), [('threshold', 80), ('threshold', 100)])
        subjects = [str(m['Subject']) for m in self.new_mail()]
        self.assertEqual(len([s for s in subjects if '80' in s]), 1)
        exhausted = [
            m for m in self.new_mail()
            if 'https://portail.webservice.mq' in m.get_body().get_content()]
        self.assertEqual(len(exhausted), 1)

        def reverse_and_redo():
            Request = Pool().get('forfait.request')
            Request.reverse([Request(request)], "Erreur de saisie")
            Request.done([Request(request)])
        sent = len(self.smtp.messages)
        self.in_company(reverse_and_redo)
        self.assertEqual(
            self.alerts(party), [('threshold', 80), ('threshold', 100)])
        self.assertFalse([
                m for m in self.smtp.messages[sent:]
                if m['Auto-Submitted'] == 'auto-generated'
                and 'pdf' not in str(m.get_content_type())
                and not list(m.iter_attachments())])

    def test_both_thresholds_in_one_posting(self):
        party = self.client("Hôtel Bakoua Plage", hours=10)
        self.done(party, 11 * HOUR)
        self.assertEqual(
            self.alerts(party), [('threshold', 80), ('threshold', 100)])

    def test_no_email(self):
        "A client without e-mail gets nothing and the staff see why"
        party = self.client("Garage Caraïbes", email=None, hours=1)
        request = self.done(party, 2 * HOUR)
        self.assertEqual(self.new_mail(), [])
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Alert = pool.get('forfait.credit.alert')
            Message = pool.get('ir.chat.message')
            alerts = Alert.search([('credit.party', '=', party)])
            self.assertTrue(alerts and all(a.note for a in alerts))
            notes = Message.search([
                    ('channel.resource', '=', 'forfait.request,%s' % request),
                    ('audience', '=', 'internal')])
            self.assertTrue(notes)

    @unittest.skipUnless(shutil.which('pdftotext'), "pdftotext is missing")
    def test_update_report(self):
        "The report is sent with the PDF, whose figures are right"
        party = self.client("Habitation Bellevue", hours=24)
        request = self.done(party, HOUR + HOUR / 6, subject="Horaires d'été")
        report, = [
            m for m in self.new_mail() if list(m.iter_attachments())]
        self.assertIn('client@example.mq', report['To'])
        attachment, = report.iter_attachments()
        self.assertEqual(attachment.get_content_type(), 'application/pdf')
        text = pdf_text(attachment.get_content())
        with Transaction().start(DB_NAME, 0):
            number = Pool().get('forfait.request')(request).number
        for expected in [
                number, "Horaires d'été", "Habitation Bellevue"]:
            self.assertIn(expected, text)
        for expected in [
                'Timespent1h10', 'Timebilled1h15', 'RemainingHours22h45']:
            self.assertIn(expected, compact(text))

    @unittest.skipUnless(shutil.which('pdftotext'), "pdftotext is missing")
    def test_statement(self):
        party = self.client("Madinina Kayak", hours=12)
        self.done(party, 2 * HOUR, subject="Nouvelle excursion")
        self.done(party, HOUR / 2, subject="Tarifs 2027")
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Statement = pool.get('forfait.party.statement', type='report')
            Company = pool.get('company.company')
            company, = Company.search([])
            with set_company(company):
                _, data, _, _ = Statement.execute([party], {})
        text = pdf_text(data)
        for expected in [
                "Madinina Kayak", "Nouvelle excursion", "Tarifs 2027"]:
            self.assertIn(expected, text)
        for expected in [
                'CreditedHours12h', 'Nouvelleexcursion2h', 'Tarifs20270h30',
                'RemainingHours9h30', 'AvailableHours9h30']:
            self.assertIn(expected, compact(text))

    def test_monthly_statement(self):
        "Only the clients who asked for it get their statement"
        wanted = self.client("Hôtel Bakoua", email='hotel@example.mq')
        self.client("Garage Caraïbes", email='garage@example.mq')

        def opt_in():
            Party = Pool().get('party.party')
            Party.write([Party(wanted)], {'forfait_monthly_statement': True})
        self.in_company(opt_in)
        self.in_company(
            lambda: Pool().get('party.party').send_forfait_statements())
        statement, = self.new_mail()
        self.assertIn('hotel@example.mq', statement['To'])
        attachment, = statement.iter_attachments()
        self.assertEqual(attachment.get_content_type(), 'application/pdf')

    @unittest.skipUnless(shutil.which('pdftotext'), "pdftotext is missing")
    def test_long_report(self):
        "200 work lines and a long subject keep every line, over pages"
        party = self.client("Cabinet infirmier", hours=500)
        subject = "Refonte complète " + "de la page des soins " * 14

        def log_many():
            pool = Pool()
            Request = pool.get('forfait.request')
            Line = pool.get('timesheet.line')
            Employee = pool.get('company.employee')
            employee, = Employee.search([])
            request, = Request.create([{'party': party, 'subject': subject}])
            Request.open([request])
            Line.create([{
                        'forfait_request': request.id, 'employee': employee.id,
                        'duration': dt.timedelta(minutes=i % 50 + 1),
                        'description': "Ligne %03d" % i} for i in range(200)])
            Request.done([request])
        self.in_company(log_many)
        report, = [m for m in self.new_mail() if list(m.iter_attachments())]
        attachment, = report.iter_attachments()
        text = pdf_text(attachment.get_content())
        for i in range(200):
            self.assertIn("Ligne %03d" % i, text)
        self.assertGreater(text.count('\f'), 3)
        self.assertIn("de la page des soins", text)

    def test_expiry_reminder(self):
        party = self.client("Association Bèlè", hours=5)

        def shorten():
            pool = Pool()
            Credit = pool.get('forfait.credit')
            credit, = Credit.search([('party', '=', party)])
            credit.end_date = pool.get('ir.date').today() + dt.timedelta(20)
            credit.save()
        self.in_company(shorten)
        for _ in range(2):
            self.in_company(
                lambda: Pool().get('forfait.credit').send_expiry_reminders())
        self.assertEqual(self.alerts(party), [('expiry', 0)])
        reminder, = self.new_mail()
        body = reminder.get_body().get_content()
        self.assertIn('5 h of your update forfait can still be used', body)
        self.assertIn('- Remaining Hours: 5 h', body)


del RouteTestCase
