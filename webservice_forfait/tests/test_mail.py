import unittest

from hypothesis import example, given, settings
from hypothesis import strategies as st

from webservice_forfait.mail import html_to_text, parse

headers = st.lists(st.tuples(
        st.sampled_from([
                'From', 'To', 'Subject', 'Message-ID', 'In-Reply-To',
                'Content-Type', 'Content-Transfer-Encoding',
                'Auto-Submitted', 'Precedence', 'References']),
        st.text(max_size=60)), max_size=8)


class ParseTestCase(unittest.TestCase):
    "No input makes reading a mail raise"

    @given(st.binary(max_size=2000))
    @settings(max_examples=300, deadline=None)
    def test_any_bytes(self, raw):
        mail = parse(raw)
        self.assertIsInstance(mail.text, str)

    @given(headers, st.text(max_size=500))
    @example([('Message-ID', '<')], '')
    @example([('Content-Type', 'multipart/mixed; boundary=')], '--\r\n')
    @settings(max_examples=300, deadline=None)
    def test_any_headers(self, header_list, body):
        raw = ''.join('%s: %s\r\n' % (k, v.replace('\n', ' ').replace(
                        '\r', ' ')) for k, v in header_list)
        mail = parse((raw + '\r\n' + body).encode('utf-8', 'surrogatepass'))
        self.assertIsInstance(mail.subject, str)
        self.assertIsInstance(mail.attachments, list)
        if mail.sender:
            self.assertEqual(mail.sender, mail.sender.lower())

    def test_html(self):
        self.assertEqual(
            html_to_text(
                '<html><style>p{}</style><p>Bonjour&nbsp;Lucette,</p>'
                '<p>Ajoutez l&#8217;horaire<br>du dimanche.</p></html>'),
            'Bonjour Lucette,\n\nAjoutez l\u2019horaire\ndu dimanche.')

    def test_automatic(self):
        for header in [
                'Auto-Submitted: auto-replied', 'Precedence: bulk',
                'List-Id: <news.example.com>', 'X-Autoreply: yes']:
            with self.subTest(header=header):
                mail = parse((
                        'From: a@example.com\r\n%s\r\nSubject: x\r\n\r\nx'
                        % header).encode())
                self.assertTrue(mail.automatic)
        self.assertFalse(parse(b'From: a@example.com\r\n\r\nx').automatic)
