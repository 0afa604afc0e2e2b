"""Mutated and racing mail: every message is stored and ends in a final
state with a readable reason, a second delivery of one message is a
duplicate whatever the timing

FORFAIT_MUTATIONS sets the number of mutations (300 by default; `make fuzz`
runs more).
"""
import io
import os
import random
import threading
import unittest

from trytond import backend
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase
from trytond.transaction import Transaction
from webservice_forfait import mta

# the module, not its test case: pytest would run its tests again here
from . import test_inbound_email as inbound
from .database import count_queries
from .test_inbound_email import HTTP_MAX_SIZE, IDENTIFIER, corpus

MUTATIONS = int(os.environ.get('FORFAIT_MUTATIONS', 300))
FINAL = {'processed', 'ignored', 'duplicate', 'rejected'}
URL = '/%s/inbound_email/inbox/%s' % (DB_NAME, IDENTIFIER)


def mutate(data, rng):
    "Return data changed as a transport or a broken client changes mail"
    kind = rng.choice([
            'truncate', 'flip', 'nul', 'duplicate', 'huge', 'charset',
            'fold', 'separator', 'to'])
    if kind == 'truncate':
        return data[:rng.randrange(len(data))]
    if kind in {'flip', 'nul'}:
        data = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = (
                0 if kind == 'nul' else rng.randrange(256))
        return bytes(data)
    lines = data.split(b'\n')
    end = lines.index(b'\r') if b'\r' in lines else (
        lines.index(b'') if b'' in lines else len(lines))
    if kind == 'duplicate':
        line = lines[rng.randrange(max(end, 1))]
        lines.insert(rng.randrange(max(end, 1)), line)
    elif kind == 'huge':
        lines.insert(0, b'X-Junk: ' + b'a' * rng.randint(1, 300_000) + b'\r')
    elif kind == 'to':
        lines.insert(0, b'To: ' + b', '.join(
                b'<guest%d@example.mq>' % i
                for i in range(rng.randint(1, 20_000))) + b'\r')
    elif kind == 'charset':
        return data.replace(b'charset=', b'charset=' + rng.choice([
                    b'x-klingon;x=', b'utf-16;x=', b'iso-2022-jp;x=',
                    b'"', b'']), 1)
    elif kind == 'fold':
        return data.replace(b'Message-ID: <', b'Message-ID:\r\n\t<\r\n\t', 1)
    elif kind == 'separator':
        if end < len(lines):
            del lines[end]
    return b'\n'.join(lines)


class MutationTestCase(RouteTestCase):
    "Mutated corpus messages through the inbox route"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        inbound.use_smtp_server(cls)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        inbound.InboundEmailTestCase.setUpDatabase()

    def test_mutations(self):
        rng = random.Random(int(os.environ.get('FORFAIT_MUTATIONS_SEED', 7)))
        sources = [d for _, d in corpus() if len(d) < 100_000]
        client = self.client()
        posted = []
        for _ in range(MUTATIONS):
            data = mutate(rng.choice(sources), rng)
            if not data:
                continue
            if len(data) < HTTP_MAX_SIZE:
                response = client.post(URL, data=data)
                self.assertEqual(response.status_code, 204, data[:300])
            else:
                inbound.InboundEmailTestCase.receive(self, data)
            posted.append(data)
        with Transaction().start(DB_NAME, 0):
            Email = Pool().get('inbound.email')
            emails = Email.search([], order=[('id', 'ASC')])
            self.assertEqual([e.data for e in emails][-len(posted):], posted)
            states = {}
            for email_ in emails:
                states.setdefault(email_.forfait_state, []).append(email_)
                self.assertIn(
                    email_.forfait_state, FINAL, email_.forfait_error)
                self.assertIsNone(email_.forfait_error)

    def test_list_queries(self):
        "The Received E-mails list reads in as many statements for more"
        client = self.client()
        fields = [
            'create_date', 'forfait_sender', 'forfait_subject', 'inbox',
            'rule', 'result', 'result.rec_name', 'forfait_state']
        counts = []
        for count in [3, 12]:
            for i in range(count):
                response = client.post(URL, data=(
                        'From: c%s@example.mq\r\nSubject: Liste %s\r\n'
                        'Message-ID: <list-%s-%s@example.mq>\r\n\r\nx\r\n'
                        % (i, i, count, i)).encode())
                self.assertEqual(response.status_code, 204)
            with Transaction().start(DB_NAME, 0, readonly=True):
                Email = Pool().get('inbound.email')
                with count_queries() as queries:
                    rows = Email.search_read(
                        [('forfait_subject', 'like', 'Liste %')],
                        fields_names=fields)
                counts.append(len(queries))
                self.assertTrue(all(
                        r['forfait_sender'] and r['result.'] for r in rows))
        self.assertEqual(counts[0], counts[1])

    def test_huge_to(self):
        "A To header of 83,000 addresses is stored and processed"
        to = ', '.join(
            'Guest %d <guest%d@example.mq>' % (i, i) for i in range(83_000))
        data = (
            'From: contact@habitation-bellevue.mq\r\nTo: %s\r\n'
            'Subject: Salon\r\nMessage-ID: <huge-to@example.mq>\r\n\r\n'
            'Annoncez le salon.\r\n' % to).encode()
        inbound.InboundEmailTestCase.receive(self, data)
        with Transaction().start(DB_NAME, 0):
            Email = Pool().get('inbound.email')
            email_, = Email.search(
                [('forfait_message_id', '=', '<huge-to@example.mq>')])
            self.assertEqual(email_.forfait_state, 'processed')
            self.assertEqual(email_.result.description, "Annoncez le salon.")

    def test_empty(self):
        "An empty message is refused by the pipe command with a bounce"
        self.assertEqual(
            mta.main(['http://127.0.0.1:9/'], io.BytesIO(b'')),
            mta.EX_DATAERR)

    @unittest.skipIf(
        backend.name == 'sqlite', "SQLite runs one transaction at a time")
    def test_simultaneous_deliveries(self):
        "The same message delivered twice at the same moment: one request"
        pairs = 10
        for pair in range(pairs):
            data = (
                'From: contact@habitation-bellevue.mq\r\n'
                'To: update@webservice.mq\r\n'
                'Subject: Doublon %s\r\n'
                'Message-ID: <race-%s@habitation-bellevue.mq>\r\n'
                '\r\nUne seule demande.\r\n' % (pair, pair)).encode()
            barrier = threading.Barrier(2)
            statuses = []

            def deliver():
                client = self.client()
                barrier.wait()
                statuses.append(client.post(URL, data=data).status_code)
            threads = [threading.Thread(target=deliver) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(statuses, [204, 204])
        with Transaction().start(DB_NAME, 0):
            pool = Pool()
            Email = pool.get('inbound.email')
            Request = pool.get('forfait.request')
            for pair in range(pairs):
                emails = Email.search([
                        ('forfait_message_id', '=',
                            '<race-%s@habitation-bellevue.mq>' % pair)])
                self.assertEqual(
                    sorted(e.forfait_state for e in emails),
                    ['duplicate', 'processed'])
                self.assertEqual(Request.search_count(
                        [('subject', '=', 'Doublon %s' % pair)]), 1)


del RouteTestCase
