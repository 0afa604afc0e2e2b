"The e-mail corpus through the real inbox route, with a real SMTP server"
import io
import json
import math
import os
import smtplib
import subprocess
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

import trytond.config as config
from trytond import backend
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction, TransactionError
from trytond.worker import run_task
from trytond.wsgi import app
from webservice_forfait import mta
from webservice_forfait.mail import parse

from .imap_server import Dovecot
from .smtp_server import SMTPServer, free_port

CORPUS = os.path.join(os.path.dirname(__file__), 'emails')
CLIENTS = {
    "Boulangerie Chez Lucette": [
        'lucette.marie@chezlucette.mq', 'commandes@chezlucette.mq'],
    "Hôtel Bakoua Plage": ['direction@bakoua-plage.mq'],
    "Habitation Bellevue": ['contact@habitation-bellevue.mq'],
    "Garage Caraïbes": ['accueil@groupe-caraibes.mq'],
    "Caraïbes Location": ['accueil@groupe-caraibes.mq'],
    }
IDENTIFIER = 'f0rfa1t'
HTTP_MAX_SIZE = 2_000_000


def corpus():
    with open(os.path.join(CORPUS, 'manifest.json'), encoding='utf-8') as f:
        for entry in json.load(f):
            with open(os.path.join(CORPUS, entry['file']), 'rb') as f:
                data = f.read()
            if 'generate' in entry:
                data = pad(data, entry['generate'])
            yield entry, data


def pad(data, rule):
    "Grow a template message to the size the manifest asks for"
    line = (rule['pad_line'] + rule['line_ending']).encode()
    marker = rule['insert_before'].encode()
    count = math.ceil((rule['size'] - len(data)) / len(line))
    position = data.index(marker)
    return data[:position] + line * count + data[position:]


def run_committed(func):
    """Run func in a committed transaction, then the tasks it queued,
    restarting it with the locks it asks for as the RPC layer does"""
    extras = {}
    while True:
        with Transaction().start(DB_NAME, 0, **extras) as transaction:
            try:
                func()
            except TransactionError as error:
                transaction.rollback()
                transaction.tasks.clear()
                error.fix(extras)
                continue
            transaction.commit()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
        break
    for task_id in tasks:
        run_task(DB_NAME, task_id)


def use_smtp_server(cls):
    "Send the mail of the test class to a real SMTP server on loopback"
    cls.smtp = SMTPServer().start()
    cls.addClassCleanup(cls.smtp.stop)
    for section, option, value in [
            ('email', 'uri', cls.smtp.uri),
            ('email', 'from', 'update@webservice.mq'),
            ]:
        if not config.has_section(section):
            config.add_section(section)
            cls.addClassCleanup(config.remove_section, section)
        old = config.get(section, option)
        config.set(section, option, value)
        if old is not None:
            cls.addClassCleanup(config.set, section, option, old)


class InboundEmailTestCase(RouteTestCase):
    "Every message of the corpus ends as the manifest says"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        pool = Pool()
        Party = pool.get('party.party')
        Request = pool.get('forfait.request')
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            parties = {name: Party(name=name, contact_mechanisms=[
                        {'type': 'email', 'value': e} for e in emails])
                for name, emails in CLIENTS.items()}
            Party.save(parties.values())
            Request.create([{
                        'number': 'MAJ-2026-0001', 'subject': "Horaires",
                        'party': parties["Boulangerie Chez Lucette"].id,
                        'email_message_id':
                            '<ack-MAJ-2026-0001@webservice.mq>',
                        }, {
                        'number': 'MAJ-2026-0002', 'subject': "Chambres",
                        'party': parties["Hôtel Bakoua Plage"].id,
                        }])
            config = Config(1)
            config.email_sender = 'Web Service <update@webservice.mq>'
            config.save()
            inbox = config.inbound_inbox
            inbox.identifier = IDENTIFIER
            inbox.save()
            config.request_sequence.number_next = 3
            config.request_sequence.save()

    def test_corpus(self):
        client = self.client()
        url = '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER)
        for entry, data in corpus():
            with self.subTest(file=entry['file']):
                sent = len(self.smtp.messages)
                if len(data) < HTTP_MAX_SIZE:
                    response = client.post(url, data=data)
                    self.assertEqual(response.status_code, 204)
                else:
                    # the inbox URL refuses it (413) and the MTA bounces it;
                    # the mailbox poller hands it over like this
                    self.receive(data)
                self.check(entry, data, self.smtp.messages[sent:])

    def test_conversation(self):
        "Staff messages reach the client, whose replies come back"
        client = self.client()
        url = '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER)
        response = client.post(url, data=(
                b'From: Hotel <direction@bakoua-plage.mq>\r\n'
                b'To: update@webservice.mq\r\n'
                b'Subject: Photos de la piscine\r\n'
                b'Message-ID: <conversation-1@bakoua-plage.mq>\r\n'
                b'\r\nMerci de remplacer les photos de la piscine.\r\n'))
        self.assertEqual(response.status_code, 204)

        def post():
            pool = Pool()
            Request = pool.get('forfait.request')
            Channel = pool.get('ir.chat.channel')
            request, = Request.search(
                [('subject', '=', "Photos de la piscine")])
            with Transaction().set_context(_check_access=False):
                Channel.post(
                    request, "Pouvez-vous envoyer les photos ?",
                    audience='public')
        sent = len(self.smtp.messages)
        run_committed(post)
        question, = self.smtp.messages[sent:]
        self.assertIn('direction@bakoua-plage.mq', question['X-Envelope-To'])
        self.assertIn("Pouvez-vous envoyer", question.get_content())
        reply_to = str(question['Reply-To']).strip()
        self.assertRegex(reply_to, r'^update\+[0-9a-f]{32}@webservice\.mq$')

        reply = (
            'From: Hotel <direction@bakoua-plage.mq>\r\n'
            'To: %s\r\n'
            'Subject: Re: les photos\r\n'
            'Message-ID: <conversation-2@bakoua-plage.mq>\r\n'
            '\r\nLes voici en pièce jointe.\r\n' % reply_to)
        response = client.post(url, data=reply.encode('utf-8'))
        self.assertEqual(response.status_code, 204)
        with Transaction().start(DB_NAME, 0):
            Message = Pool().get('ir.chat.message')
            message, = Message.search(
                [('reference', '=', '<conversation-2@bakoua-plage.mq>')])
            self.assertEqual(
                message.channel.resource.subject, "Photos de la piscine")
            self.assertEqual(message.content, "Les voici en pièce jointe.")

    @unittest.skipIf(
        backend.name == 'sqlite',
        "an in-memory SQLite database is not shared with a server thread")
    def test_mta_end_to_end(self):
        "A mail sent over SMTP to the MTA is piped to the inbox URL"
        http = make_server('127.0.0.1', 0, app, threaded=True)
        thread = threading.Thread(target=http.serve_forever)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(http.shutdown)
        url = 'http://127.0.0.1:%s/%s/inbound_email/inbox/%s' % (
            http.server_port, DB_NAME, IDENTIFIER)
        command = os.path.join(
            os.path.dirname(sys.executable), 'forfait-mail-to-inbox')

        class Alias:
            "The MTA's update: |forfait-mail-to-inbox URL alias"
            async def handle_DATA(self, server, session, envelope):
                process = subprocess.run(
                    [command, url], input=envelope.content,
                    capture_output=True)
                return '250 OK' if process.returncode == 0 else (
                    '451 %s' % process.stderr.decode()[:100])

        mta = Controller(Alias(), hostname='127.0.0.1', port=free_port())
        mta.start()
        self.addCleanup(mta.stop)
        sent = len(self.smtp.messages)
        with smtplib.SMTP(mta.hostname, mta.port) as smtp:
            smtp.sendmail(
                'contact@habitation-bellevue.mq', ['update@webservice.mq'],
                'From: contact@habitation-bellevue.mq\r\n'
                'To: update@webservice.mq\r\n'
                'Subject: Fête du rhum\r\n'
                'Message-ID: <mta-1@habitation-bellevue.mq>\r\n'
                'Content-Type: text/plain; charset=utf-8\r\n'
                '\r\nAnnoncer la fête du rhum samedi.\r\n'.encode())
        with Transaction().start(DB_NAME, 0):
            Request = Pool().get('forfait.request')
            request, = Request.search([('subject', '=', "Fête du rhum")])
            self.assertEqual(request.party.name, "Habitation Bellevue")
            ack, = self.smtp.messages[sent:]
            self.assertIn(request.number, ack['Subject'])

    def receive(self, data):
        def store():
            pool = Pool()
            Email = pool.get('inbound.email')
            inbox = pool.get('forfait.configuration')(1).inbound_inbox
            email_ = Email(inbox=inbox, data=data, data_type='raw')
            inbox.process(email_)
            email_.save()
        run_committed(store)

    def check(self, entry, data, sent):
        mail = parse(data)
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Email = pool.get('inbound.email')
            Request = pool.get('forfait.request')
            Attachment = pool.get('ir.attachment')
            Message = pool.get('ir.chat.message')
            email_, = Email.search([], order=[('id', 'DESC')], limit=1)
            self.assertEqual(email_.data, data, "the mail is stored as is")
            outcome = entry['outcome']
            state = {
                'new_request': 'processed', 'appended': 'processed',
                'rejected_size': 'rejected',
                }.get(outcome, outcome)
            self.assertEqual(
                email_.forfait_state, state, email_.forfait_error)
            request = email_.result
            if outcome in {'new_request', 'appended'}:
                self.assertIsInstance(request, Request)
                self.assertEqual(
                    request.party.name if request.party else None,
                    entry['party'])
                attachments = {
                    a.name for a in Attachment.search(
                        [('resource', '=', str(request))])}
                self.assertLessEqual(
                    set(entry.get('attachments') or []), attachments)
            else:
                self.assertIsNone(request)
            if outcome == 'new_request':
                self.assertNotIn(
                    request.number, {'MAJ-2026-0001', 'MAJ-2026-0002'})
                self.assertEqual(request.channel, 'email')
                self.assertEqual(request.state, 'draft')
                if entry.get('subject'):
                    self.assertEqual(request.subject, entry['subject'][:250])
                text = request.description
            elif outcome == 'appended':
                self.assertEqual(request.number, entry['request'])
                message, = Message.search([
                        ('reference', '=', mail.message_id)])
                self.assertEqual(message.channel.resource, request)
                text = message.content
            else:
                text = None
            if text is not None:
                for fragment in entry.get('text_contains') or []:
                    self.assertIn(fragment, text)
                for fragment in entry.get('text_excludes') or []:
                    self.assertNotIn(fragment, text)
                self.assertNotIn('\ufffd', text)
                self.assertNotIn('\ufffd', request.subject)
            if entry.get('acknowledged') == 'any':
                # an international address: in the outbox, sent if the
                # SMTP server speaks SMTPUTF8
                Outbox = pool.get('forfait.outbox')
                self.assertEqual(Outbox.search_count(
                        [('resource', '=', str(request))]), 1)
                self.assertIsNone(email_.forfait_error)
            elif entry.get('acknowledged'):
                self.assertEqual(len(sent), 1, [m['Subject'] for m in sent])
                ack, = sent
                self.assertEqual(ack['In-Reply-To'].strip(), mail.message_id)
                self.assertIn(request.number, ack['Subject'])
                self.assertIn(mail.sender, ack['To'].lower())
                self.assertEqual(
                    request.email_message_id, ack['Message-ID'].strip())
            elif entry.get('size_notice'):
                self.assertEqual(len(sent), 1, [m['Subject'] for m in sent])
                notice, = sent
                self.assertIn(mail.sender, notice['To'].lower())
            else:
                self.assertEqual(sent, [])


class OutboxTestCase(RouteTestCase):
    "Nothing is lost when the SMTP server or the processing fails"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        super().setUpClass()

    def test_processing_error_retry(self):
        """An acknowledgement that fails never sinks the request: its error
        stays on the message until staff retry it"""
        def set_sender(sender):
            def write():
                config = Pool().get('forfait.configuration')(1)
                config.email_sender = sender
                config.save()
            return write
        run_committed(set_sender(None))
        data = (
            b'From: contact@habitation-bellevue.mq\r\n'
            b'Subject: Nouvelle photo\r\n'
            b'Message-ID: <error-1@habitation-bellevue.mq>\r\n'
            b'\r\nBonjour\r\n')
        response = self.client().post(
            '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER), data=data)
        self.assertEqual(response.status_code, 204)

        def stored():
            with Transaction().start(DB_NAME, 0):
                Email = Pool().get('inbound.email')
                email_, = Email.search(
                    [('forfait_message_id', '=',
                        '<error-1@habitation-bellevue.mq>')])
                return (email_.id, email_.data, email_.forfait_state,
                    email_.forfait_error,
                    email_.result.subject if email_.result else None)
        email_id, kept, state, error, result = stored()
        # the acknowledgement failed: the request is there all the same
        self.assertEqual(
            (kept, state, result), (data, 'processed', "Nouvelle photo"))
        self.assertIn('sender address', error)

        run_committed(set_sender('update@webservice.mq'))
        sent = len(self.smtp.messages)
        run_committed(lambda: Pool().get('inbound.email').forfait_retry(
                [Pool().get('inbound.email')(email_id)]))
        _, _, state, error, result = stored()
        self.assertEqual((state, error), ('processed', None))
        self.assertEqual(result, "Nouvelle photo")
        ack, = self.smtp.messages[sent:]
        self.assertEqual(
            ack['In-Reply-To'].strip(), '<error-1@habitation-bellevue.mq>')

    @classmethod
    def setUpDatabase(cls):
        InboundEmailTestCase.setUpDatabase()

    def test_smtp_down(self):
        smtp = SMTPServer()
        old = config.get('email', 'uri')
        config.set('email', 'uri', smtp.uri)
        self.addCleanup(config.set, 'email', 'uri', old)
        data = (
            b'From: Lucette Marie <lucette.marie@chezlucette.mq>\r\n'
            b'To: update@webservice.mq\r\n'
            b'Subject: Changer la photo du jour\r\n'
            b'Message-ID: <smtp-down-1@chezlucette.mq>\r\n'
            b'\r\nBonjour, merci de changer la photo.\r\n')
        response = self.client().post(
            '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER), data=data)
        self.assertEqual(response.status_code, 204)

        def outbox():
            with Transaction().start(DB_NAME, 0):
                Outbox = Pool().get('forfait.outbox')
                return [(o.state, o.attempts) for o in Outbox.search(
                            [('subject', 'like', '%Changer la photo%')])]
        self.assertEqual(outbox(), [('pending', 1)])

        with smtp:
            with Transaction().start(DB_NAME, 0) as transaction:
                Pool().get('forfait.outbox').send_pending()
                transaction.commit()
            self.assertEqual(outbox(), [('sent', 1)])
            self.assertIn('<smtp-down-1@chezlucette.mq>', [
                    str(m['In-Reply-To']).strip() for m in smtp.messages])


class MTACommandTestCase(unittest.TestCase):
    "The MTA pipe command posts the message and maps failures to retries"

    def test_post(self):
        received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers['Content-Length'])
                received.append((self.path, self.rfile.read(length)))
                self.send_response(204 if 'good' in self.path else 500)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = HTTPServer(('127.0.0.1', 0), Handler)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(server.shutdown)
        base = 'http://127.0.0.1:%s/db/inbound_email/inbox/' % (
            server.server_port)
        message = b'From: a@example.com\r\n\r\nBonjour'
        self.assertEqual(mta.main([base + 'good'], io.BytesIO(message)), 0)
        self.assertEqual(
            received, [('/db/inbound_email/inbox/good?type=raw', message)])
        self.assertEqual(
            mta.main([base + 'bad'], io.BytesIO(message)), mta.EX_TEMPFAIL)
        self.assertEqual(mta.main([], io.BytesIO(b'')), mta.EX_USAGE)
        server.server_close()
        self.assertEqual(
            mta.main([base + 'good'], io.BytesIO(message)), mta.EX_TEMPFAIL)


@unittest.skipUnless(Dovecot.available(), "dovecot is not installed")
class MailboxTestCase(RouteTestCase):
    "A message put in a real IMAP mailbox ends up as a request"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        cls.dovecot = Dovecot().start()
        cls.addClassCleanup(cls.dovecot.stop)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        InboundEmailTestCase.setUpDatabase()
        Config = Pool().get('forfait.configuration')
        config_ = Config(1)
        config_.imap_host = cls.dovecot.host
        config_.imap_port = cls.dovecot.port
        config_.imap_security = 'none'
        config_.imap_user = cls.dovecot.user
        config_.imap_password = cls.dovecot.password
        config_.imap_processed_folder = 'Processed'
        config_.save()

    def test_fetch(self):
        entries = {e['file']: (e, d) for e, d in corpus()}
        entry, data = entries['04_pieces_jointes_carte_noel.eml']
        self.dovecot.append(data)
        for _ in range(2):
            run_committed(
                lambda: Pool().get('inbound.email').forfait_fetch_mailboxes())
        self.assertEqual(self.dovecot.messages('INBOX'), [])
        self.assertEqual(len(self.dovecot.messages('Processed')), 1)
        InboundEmailTestCase.check(self, entry, data, self.smtp.messages)


del RouteTestCase
