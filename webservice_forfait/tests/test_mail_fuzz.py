"""Structural fuzzing of the e-mail channel: MIME trees as mail clients
write them, read by parse() and posted through the real inbox route

FORFAIT_FUZZ_EXAMPLES sets the number of examples read by parse() (500 by
default), FORFAIT_FUZZ_DB_EXAMPLES those posted through the route (100 by
default, each a request in the database); `make fuzz` runs more of both.
"""
import os
import re
import unittest

from hypothesis import HealthCheck, given, settings

from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from webservice_forfait.mail import parse

from .mime_strategies import messages
from .test_inbound_email import use_smtp_server

EXAMPLES = int(os.environ.get('FORFAIT_FUZZ_EXAMPLES', 500))
DB_EXAMPLES = int(os.environ.get('FORFAIT_FUZZ_DB_EXAMPLES', 100))
IDENTIFIER = 'fuzz'


def fuzz(examples):
    return settings(
        max_examples=examples, deadline=None,
        derandomize=not os.environ.get('FORFAIT_FUZZ_RANDOM'),
        suppress_health_check=[
            HealthCheck.too_slow, HealthCheck.data_too_large])


def tokens(text):
    return re.findall(r'\w+', text or '')


def assert_in_order(case, texts, text):
    "Every word of texts is in text, in the same order"
    found = tokens(text)
    position = 0
    for content in texts:
        for word in tokens(' '.join(content)):
            try:
                position = found.index(word, position) + 1
            except ValueError:
                case.fail('%r missing after word %s of %r' % (
                        word, position, text[:500]))


class ParseFuzzTestCase(unittest.TestCase):
    "parse() finds every text part's words and every file"

    @fuzz(EXAMPLES)
    @given(messages())
    def test_structure(self, message):
        raw, texts, files, message_id = message
        mail = parse(raw)
        assert_in_order(self, texts, mail.text)
        self.assertNotIn('\x00', mail.text)
        names = [n for n, _, _ in mail.attachments]
        self.assertGreaterEqual(len(names), len(files))
        for name in files:
            if name:
                self.assertIn(name, names)
        self.assertEqual(mail.message_id, message_id)


class InboxFuzzTestCase(RouteTestCase):
    """Every generated message is stored byte for byte through the inbox
    route and processed to a request holding its words and files"""
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
            config = Config(1)
            config.email_sender = 'update@webservice.mq'
            config.save()
            inbox = config.inbound_inbox
            inbox.identifier = IDENTIFIER
            inbox.save()

    @fuzz(DB_EXAMPLES)
    @given(messages())
    def test_inbox(self, message):
        raw, texts, files, message_id = message
        client = self.client()
        response = client.post(
            '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER), data=raw)
        self.assertEqual(response.status_code, 204)
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Email = pool.get('inbound.email')
            Attachment = pool.get('ir.attachment')
            email_, = Email.search([], order=[('id', 'DESC')], limit=1)
            self.assertEqual(email_.data, raw)
            if email_.forfait_state == 'duplicate':
                # hypothesis replays a message: the first one holds its id
                self.assertEqual(Email.search_count([
                            ('forfait_message_claim', '=', message_id)]), 1)
                return
            self.assertEqual(
                email_.forfait_state, 'processed', email_.forfait_error)
            self.assertIsNone(email_.forfait_error)
            request = email_.result
            assert_in_order(self, texts, request.description)
            names = [a.name for a in Attachment.search(
                    [('resource', '=', str(request))])]
            self.assertGreaterEqual(len(names), len(files))
            for name in files:
                if name:
                    self.assertIn(name, names)


del RouteTestCase
