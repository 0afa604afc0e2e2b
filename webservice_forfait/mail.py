"""Reading received e-mail: pure functions, no database.

parse() never raises: a message that cannot be read part by part is kept
with whatever text could be decoded.
"""
import email
import email.policy
import html
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from html.parser import HTMLParser

AUTO_SENDERS = {'mailer-daemon', 'postmaster', 'noreply', 'no-reply'}
BRACKETED = re.compile(r'\[([A-Za-z0-9]+(?:-[A-Za-z0-9]+)+)\]')
MESSAGE_IDS = re.compile(r'<[^<>\s]+>')


@dataclass
class Mail:
    sender: str = None
    sender_name: str = ''
    recipients: list = field(default_factory=list)
    subject: str = ''
    message_id: str = None
    references: list = field(default_factory=list)
    text: str = ''
    attachments: list = field(default_factory=list)
    automatic: bool = False

    @property
    def numbers(self):
        "The request numbers written between brackets in the subject"
        return BRACKETED.findall(self.subject or '')


class _TextExtractor(HTMLParser):
    BLOCKS = {'br', 'p', 'div', 'li', 'tr', 'h1', 'h2', 'h3', 'h4',
        'blockquote', 'table', 'ul', 'ol'}
    HIDDEN = {'style', 'script', 'head', 'title'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append('\n')
        if tag == 'li':
            self.parts.append('- ')

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append('\n')

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def html_to_text(value):
    "Return readable text from an HTML body"
    extractor = _TextExtractor()
    try:
        extractor.feed(value)
        extractor.close()
        text = ''.join(extractor.parts)
    except Exception:
        text = html.unescape(re.sub(r'<[^>]*>', ' ', value))
    lines = [' '.join(l.split()) for l in text.splitlines()]
    return re.sub(r'\n{3,}', '\n\n', '\n'.join(lines)).strip()


def _header(message, name):
    "Return the header's value, raw when it cannot be parsed"
    try:
        value = message.get(name)
        return str(value) if value is not None else None
    except Exception:
        for key, value in message.raw_items():
            if key.lower() == name.lower():
                return str(value)


def _content(part):
    "Return the decoded text of a part, whatever its charset says"
    if part.get_content_charset() in {None, 'us-ascii', 'ascii'}:
        # undeclared 8-bit text is UTF-8 from most clients, else Windows-1252
        payload = part.get_payload(decode=True) or b''
        try:
            return payload.decode('utf-8')
        except UnicodeDecodeError:
            return payload.decode('windows-1252', errors='replace')
    try:
        return part.get_content()
    except Exception:
        payload = part.get_payload(decode=True) or b''
        charset = part.get_content_charset() or 'utf-8'
        try:
            return payload.decode(charset, errors='replace')
        except LookupError:
            return payload.decode('windows-1252', errors='replace')


def _body(message):
    try:
        part = message.get_body(preferencelist=('plain', 'html'))
    except Exception:
        part = None
    if part is None:
        for candidate in message.walk():
            if candidate.get_content_maintype() == 'text':
                part = candidate
                break
    if part is None:
        # a multipart without usable parts (no boundary): read it as text
        payload = message.get_payload(decode=True) or b''
        if not payload and isinstance(message.get_payload(), str):
            return message.get_payload().strip()
        return payload.decode(
            message.get_content_charset() or 'utf-8', errors='replace').strip()
    text = _content(part)
    if not isinstance(text, str):
        return ''
    if part.get_content_subtype() == 'html':
        text = html_to_text(text)
    return text.replace('\r\n', '\n').strip()


def _attachments(message, body_parts):
    "Return (filename, content type, data) of every file the mail carries"
    attachments, inside_forward = [], set()
    for index, part in enumerate(message.walk()):
        if id(part) in body_parts or id(part) in inside_forward:
            continue
        content_type = part.get_content_type()
        if content_type == 'message/rfc822':
            forwarded = part.get_payload()
            forwarded = forwarded[0] if isinstance(forwarded, list) else (
                forwarded)
            inside_forward.update(id(p) for p in forwarded.walk())
            data = forwarded.as_bytes()
        elif part.is_multipart():
            continue
        else:
            disposition = part.get_content_disposition()
            if not (disposition == 'attachment'
                    or (disposition == 'inline' and part.get_filename())
                    or part.get_content_maintype() in {'image', 'application'}
                    or content_type == 'text/calendar'):
                continue
            try:
                data = part.get_payload(decode=True)
            except Exception:
                data = None
            if data is None:
                data = str(part.get_payload()).encode('utf-8', 'replace')
        filename = part.get_filename()
        if not filename:
            extension = {
                'text/calendar': 'ics', 'message/rfc822': 'eml',
                }.get(content_type, 'bin')
            filename = 'attachment-%s.%s' % (index, extension)
        attachments.append((_safe_name(filename), content_type, data))
    return attachments


def _safe_name(filename):
    name = re.sub(r'[\x00-\x1f/\\]+', '_', str(filename)).strip(' .')
    return name[:200] or 'attachment'


def is_automatic(message, sender):
    "Tell auto-replies, bounces and list mail, which never get an answer"
    auto_submitted = (_header(message, 'Auto-Submitted') or 'no').lower()
    precedence = (_header(message, 'Precedence') or '').lower()
    local_part = (sender or '').split('@')[0].lower()
    return bool(
        auto_submitted.strip() != 'no'
        or precedence.strip() in {'bulk', 'list', 'junk', 'auto_reply'}
        or _header(message, 'List-Id')
        or _header(message, 'X-Autoreply')
        or _header(message, 'X-Autorespond')
        or (_header(message, 'X-Auto-Response-Suppress') or '').lower()
        in {'all', 'oof', 'autoreply'}
        or (_header(message, 'Return-Path') or '').strip() == '<>'
        or local_part in AUTO_SENDERS
        or message.get_content_type() == 'multipart/report')


def parse(raw):
    "Return the Mail read from raw bytes"
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        return Mail(text=raw.decode('utf-8', errors='replace'))
    mail = Mail()
    try:
        name, address = getaddresses([_header(message, 'From') or ''])[0]
    except Exception:
        name, address = '', ''
    if address and '@' in address:
        mail.sender = address.strip().lower()
        mail.sender_name = name
    try:
        mail.recipients = [
            a.lower() for _, a in getaddresses(
                [_header(message, h) or '' for h in ['To', 'Cc']]) if a]
    except Exception:
        pass
    mail.subject = ' '.join((_header(message, 'Subject') or '').split())
    mail.message_id = (_header(message, 'Message-ID') or '').strip() or None
    mail.references = MESSAGE_IDS.findall(' '.join(filter(None, [
                    _header(message, 'In-Reply-To'),
                    _header(message, 'References')])))
    try:
        mail.automatic = is_automatic(message, mail.sender)
    except Exception:
        mail.automatic = False
    try:
        body = message.get_body(preferencelist=('plain', 'html'))
    except Exception:
        body = None
    try:
        mail.text = _body(message)
    except Exception:
        mail.text = raw.decode('utf-8', errors='replace')
    try:
        related = set()
        if body is not None:
            related.add(id(body))
            for alternative in message.walk():
                if alternative.get_content_maintype() == 'text' and (
                        alternative.get_content_disposition() is None):
                    related.add(id(alternative))
        mail.attachments = _attachments(message, related)
    except Exception:
        mail.attachments = []
    return mail
