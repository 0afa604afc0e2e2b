"Fetching the update@ mailbox from a real Dovecot IMAP server"
import imaplib
import ssl
import unittest
from unittest import mock

from webservice_forfait import imap
from webservice_forfait.tests.imap_server import Dovecot

DONE = {'$ForfaitDone', '\\Seen'}


def message(number):
    "Return the raw bytes of a client's e-mail"
    return (
        'From: Client <client@example.com>\r\n'
        'To: update@webservice.mq\r\n'
        'Subject: Mise à jour n°%(n)s\r\n'
        'Message-ID: <%(n)s.request@example.com>\r\n'
        'MIME-Version: 1.0\r\n'
        'Content-Type: text/plain; charset=utf-8\r\n'
        'Content-Transfer-Encoding: 8bit\r\n'
        '\r\n'
        'Bonjour,\r\n'
        'merci de remplacer la photo de l\'équipe (demande %(n)s).\r\n'
        % {'n': number}).encode()


@unittest.skipUnless(
    Dovecot.available(), "dovecot is not installed (Debian: dovecot-imapd)")
class FetchTestCase(unittest.TestCase):
    "imap.fetch against Dovecot, one folder per test"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Dovecot().start()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        self.folder = self._testMethodName

    def append(self, count):
        "Put count messages in the test's folder; return raws and UIDs"
        raws = [message('%s-%s' % (self.folder, n)) for n in range(count)]
        return raws, [self.server.append(raw, self.folder) for raw in raws]

    def fetch(self, handle, security='none', port=None, **kwargs):
        return imap.fetch(self.server.host, port or self.server.port,
            security, self.server.user, self.server.password, self.folder,
            handle, **kwargs)

    def summary(self, fetched, processed, failures=()):
        return {
            'fetched': fetched,
            'processed': processed,
            'failures': list(failures),
            }

    def test_fetch_processes_each_message_once(self):
        "Each message is handled with its exact bytes, then flagged done"
        raws, uids = self.append(3)
        handled = []

        self.assertEqual(self.fetch(handled.append), self.summary(3, 3))
        self.assertEqual(handled, raws)
        self.assertEqual(
            self.server.messages(self.folder), [(u, DONE) for u in uids])

        handled.clear()
        self.assertEqual(self.fetch(handled.append), self.summary(0, 0))
        self.assertEqual(handled, [])

    def test_failed_message_is_fetched_again(self):
        "A message whose handling failed stays untouched and comes again"
        raws, uids = self.append(3)

        def handle(raw):
            if raw == raws[1]:
                raise ValueError("unknown sender")
        self.assertEqual(self.fetch(handle), self.summary(
                3, 2, [(uids[1], "ValueError('unknown sender')")]))
        self.assertEqual(self.server.messages(self.folder), [
                (uids[0], DONE), (uids[1], set()), (uids[2], DONE)])

        handled = []
        self.assertEqual(self.fetch(handled.append), self.summary(1, 1))
        self.assertEqual(handled, [raws[1]])
        self.assertEqual(
            self.server.messages(self.folder), [(u, DONE) for u in uids])

    def test_limit(self):
        "At most limit messages per fetch, oldest first"
        raws, uids = self.append(3)
        handled = []

        self.assertEqual(
            self.fetch(handled.append, limit=2), self.summary(2, 2))
        self.assertEqual(handled, raws[:2])
        self.assertEqual(
            self.fetch(handled.append, limit=2), self.summary(1, 1))
        self.assertEqual(handled, raws)

    def test_deleted_message_is_skipped(self):
        "A message someone marked \\Deleted is not fetched"
        raws, uids = self.append(2)
        with self.server.connect() as connection:
            connection.select(self.folder)
            connection.uid('STORE', str(uids[0]), '+FLAGS', '(\\Deleted)')
        handled = []

        self.assertEqual(self.fetch(handled.append), self.summary(1, 1))
        self.assertEqual(handled, raws[1:])

    def test_processed_folder(self):
        "Processed messages move to processed_folder, created if missing"
        processed = 'Traités %s' % self.folder
        # How the folder is named on the wire (modified UTF-7)
        encoded = 'Trait&AOk-s %s' % self.folder
        raws, uids = self.append(2)

        def handle(raw):
            if raw == raws[1]:
                raise ValueError
        self.assertEqual(
            self.fetch(handle, processed_folder=processed).get('processed'),
            1)
        self.assertEqual(self.server.messages(self.folder), [(uids[1], set())])
        self.assertEqual(
            [f for u, f in self.server.messages(encoded)], [DONE])

        self.fetch(lambda raw: None, processed_folder=processed)
        self.assertEqual(self.server.messages(self.folder), [])
        self.assertEqual(
            [f for u, f in self.server.messages(encoded)], [DONE, DONE])

    def test_processed_folder_without_move(self):
        "Servers without MOVE get COPY, \\Deleted and EXPUNGE"
        original = imaplib.IMAP4.capability

        def capability(self):
            typ, data = original(self)
            return typ, [data[-1].replace(b' MOVE', b'')]
        raws, uids = self.append(2)
        with mock.patch.object(imaplib.IMAP4, 'capability', capability):
            self.assertEqual(
                self.fetch(lambda raw: None, processed_folder='Done'),
                self.summary(2, 2))
        self.assertEqual(self.server.messages(self.folder), [])
        self.assertEqual(
            [f for u, f in self.server.messages('Done')], [DONE, DONE])

    def test_server_without_keywords(self):
        "Without custom keywords, \\Seen marks the processed messages"
        original = imaplib.IMAP4.response

        def response(self, code):
            if code == 'PERMANENTFLAGS':
                original(self, code)
                return code, [b'(\\Answered \\Flagged \\Deleted \\Seen)']
            return original(self, code)
        raws, uids = self.append(2)
        handled = []
        with mock.patch.object(imaplib.IMAP4, 'response', response):
            self.assertEqual(self.fetch(handled.append), self.summary(2, 2))
            self.assertEqual(self.fetch(handled.append), self.summary(0, 0))
        self.assertEqual(handled, raws)
        self.assertEqual(
            self.server.messages(self.folder),
            [(u, {'\\Seen'}) for u in uids])

    def test_ssl(self):
        "IMAP over TLS (imaps) with the server's certificate"
        raws, uids = self.append(1)
        handled = []
        self.assertEqual(self.fetch(handled.append, security='ssl',
                port=self.server.ssl_port,
                ssl_context=self.server.ssl_context()),
            self.summary(1, 1))
        self.assertEqual(handled, raws)

    def test_starttls(self):
        "STARTTLS on the plain port with the server's certificate"
        raws, uids = self.append(1)
        handled = []
        self.assertEqual(self.fetch(handled.append, security='starttls',
                ssl_context=self.server.ssl_context()),
            self.summary(1, 1))
        self.assertEqual(handled, raws)

    def test_certificate_is_verified(self):
        "An untrusted certificate stops the fetch before login"
        raws, uids = self.append(1)
        for security, port in [
                ('ssl', self.server.ssl_port),
                ('starttls', self.server.port)]:
            with self.subTest(security=security):
                with self.assertRaises(ssl.SSLCertVerificationError):
                    self.fetch(self.fail, security=security, port=port)
        self.assertEqual(self.server.messages(self.folder), [(uids[0], set())])

    def test_wrong_password(self):
        "A wrong password raises imaplib.IMAP4.error"
        raws, uids = self.append(1)
        with self.assertRaises(imaplib.IMAP4.error):
            imap.fetch(self.server.host, self.server.port, 'none',
                self.server.user, 'wrong', self.folder, self.fail)
        self.assertEqual(self.server.messages(self.folder), [(uids[0], set())])

    def test_error_logs_out(self):
        "A missing folder raises, after logging out"
        logout = mock.Mock(wraps=imaplib.IMAP4.logout)
        with mock.patch.object(imaplib.IMAP4, 'logout',
                lambda self: logout(self)):
            with self.assertRaises(imaplib.IMAP4.error):
                self.fetch(self.fail)
        self.assertEqual(logout.call_count, 1)

    def test_security(self):
        with self.assertRaises(ValueError):
            self.fetch(self.fail, security='tls')
