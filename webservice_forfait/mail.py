"""Reading received e-mail: pure functions, no database.

parse() never raises: a message that cannot be read part by part is kept
with whatever text could be decoded.
"""
import base64
import binascii
import email
import email.headerregistry
import email.message
import email.parser
import email.policy
import html
import mimetypes
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from html.parser import HTMLParser

AUTO_SENDERS = {'mailer-daemon', 'postmaster', 'noreply', 'no-reply'}
BRACKETED = re.compile(r'\[([A-Za-z0-9]+(?:-[A-Za-z0-9]+)+)\]')
MESSAGE_IDS = re.compile(r'<[^<>\s]+>')
BASE64_JUNK = re.compile(rb'[^A-Za-z0-9+/]')
SURROGATES = re.compile('[\ud800-\udfff]')
CONTROLS = re.compile('[\x00-\x20\x7f]+')
FOLDING = re.compile(r'\r?\n(?=[ \t])|[\r\n]+')
MESSAGE_ID_SIZE = 998
MAX_DEPTH = 50
TEXT_TYPES = {'text/plain', 'text/html'}
EXTENSIONS = {
    'text/calendar': 'ics', 'message/rfc822': 'eml', 'text/plain': 'txt',
    'application/octet-stream': 'bin', 'image/jpeg': 'jpg'}
# local part and domain bounded, so that a long run without "@" is linear
ADDRESS = re.compile(
    r'[^\s<>,;:"()\[\]@]{1,64}@[^\s<>,;:"()\[\]@]{1,255}')
ADDRESSES_SIZE = 20_000
UNSTRUCTURED = email.headerregistry.HeaderRegistry()


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


def clean(value):
    """Return value fit for any text column: no NUL byte, no lone
    surrogate (left by undecodable bytes)"""
    if not value:
        return value or ''
    return SURROGATES.sub('\ufffd', value.replace('\x00', ''))


def decode_bytes(data, charset=None):
    """Return text from bytes whose charset is not declared: UTF-8 when
    valid, else charset (the body's), else Windows-1252"""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        pass
    for candidate in [charset, 'windows-1252']:
        if candidate and candidate.lower() not in {'utf-8', 'us-ascii'}:
            try:
                return data.decode(candidate, errors='replace')
            except LookupError:
                continue
    return data.decode('windows-1252', errors='replace')


def _raw_header(message, name):
    "Return the header's value as received, folded, bytes as surrogates"
    name = name.lower()
    for key, value in message.raw_items():
        if key.lower() == name:
            return str(value)


def _has_raw_bytes(value):
    return bool(SURROGATES.search(value))


def _decode_words(value):
    "Return value with its RFC 2047 encoded words decoded"
    if '=?' not in value:
        return value
    try:
        return str(UNSTRUCTURED('x', value))
    except Exception:
        return value


def _header(message, name, charset=None, words=True):
    """Return the header's value unfolded and decoded, read raw when the
    header registry cannot parse it; undeclared 8-bit bytes are read as
    UTF-8, else as charset (the body's), else Windows-1252"""
    raw = _raw_header(message, name)
    if raw is None:
        return None
    value = FOLDING.sub(' ', raw)
    if _has_raw_bytes(value):
        value = decode_bytes(
            value.encode('ascii', 'surrogateescape'), charset)
    if words:
        value = _decode_words(value)
    return clean(value).strip()


def normalize_message_id(value):
    """Return a Message-ID fit to compare and store: whitespace of folding,
    control characters and NUL removed"""
    if not value:
        return None
    value = CONTROLS.sub('', SURROGATES.sub('', value))
    return value[:MESSAGE_ID_SIZE] or None


def _charset(message):
    "Return the charset declared by the first text part"
    try:
        for part in message.walk():
            if part.get_content_maintype() == 'text':
                charset = part.get_content_charset()
                if charset:
                    return charset
    except Exception:
        pass
    return None


def _payload(part):
    """Return the bytes of a part, its transfer encoding undone; broken
    base64 is read up to its last whole group, never kept encoded"""
    payload = part.get_payload()
    if isinstance(payload, list):
        return b''
    try:
        encoding = str(part.get('Content-Transfer-Encoding', '')).lower()
    except Exception:
        encoding = ''
    if encoding.strip() == 'base64':
        data = str(payload).encode('ascii', 'surrogateescape')
        try:
            return base64.b64decode(b''.join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            data = BASE64_JUNK.sub(b'', data)
            if len(data) % 4 == 1:
                data = data[:-1]
            return base64.b64decode(data + b'=' * (-len(data) % 4))
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        data = str(payload).encode('utf-8', 'surrogateescape')
    return data


def _content(part):
    "Return the decoded text of a part, whatever its charset says"
    charset = None
    try:
        charset = part.get_content_charset()
    except Exception:
        pass
    payload = _payload(part)
    if charset in {None, 'us-ascii', 'ascii'}:
        # undeclared 8-bit text is UTF-8 from most clients, else Windows-1252
        return decode_bytes(payload)
    try:
        return payload.decode(charset, errors='replace')
    except LookupError:
        return decode_bytes(payload)


def _filename(part, charset):
    """Return the decoded file name of part or None: RFC 2231, RFC 2047
    inside a quoted parameter (Outlook), or raw 8-bit bytes"""
    disposition = _raw_header(part, 'Content-Disposition') or ''
    content_type = _raw_header(part, 'Content-Type') or ''
    name = None
    if not _has_raw_bytes(disposition + content_type):
        try:
            name = part.get_filename()
        except Exception:
            name = None
    if name is None and (disposition or content_type):
        # read by the lenient compat32 parser, raw bytes decoded first
        headers = email.message.Message()
        for key, value in [
                ('Content-Disposition', disposition),
                ('Content-Type', content_type)]:
            if value:
                if _has_raw_bytes(value):
                    value = decode_bytes(
                        value.encode('ascii', 'surrogateescape'), charset)
                headers[key] = FOLDING.sub(' ', value)
        try:
            name = headers.get_filename()
        except Exception:
            name = None
        if name is not None:
            name = _decode_words(str(name))
    name = clean(str(name or '')).strip(' .')
    return _safe_name(name) if name else None


def _disposition(part):
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _content_type(part):
    try:
        return part.get_content_type()
    except Exception:
        return 'application/octet-stream'


def _rank(part):
    "Order of preference of an alternative: plain text first"
    content_type = _content_type(part)
    if content_type == 'text/plain':
        return 0
    if part.is_multipart():
        if any(_content_type(p) == 'text/plain' for p in part.walk()):
            return 1
        return 3
    if content_type == 'text/html':
        return 2
    return 4


class _Reader:
    "Walk the MIME tree: text parts to read in order, every other a file"

    def __init__(self, charset):
        self.charset = charset
        self.texts = []
        self.files = []
        self.count = 0

    def read(self, part, texts=True, files=True, depth=0):
        self.count += 1
        index = self.count
        content_type = _content_type(part)
        if depth > MAX_DEPTH:
            return
        if content_type == 'message/rfc822':
            self.read_message(part, index, texts, files, depth)
            return
        if part.is_multipart():
            subparts = [p for p in part.get_payload()
                if isinstance(p, email.message.Message)]
            chosen = None
            if content_type == 'multipart/alternative' and subparts:
                chosen = min(subparts, key=_rank)
            for subpart in subparts:
                self.read(
                    subpart, texts and (chosen is None or subpart is chosen),
                    files, depth + 1)
            return
        filename = _filename(part, self.charset)
        disposition = _disposition(part)
        maintype = content_type.split('/')[0]
        if (content_type in TEXT_TYPES or maintype == 'multipart') and (
                not filename and disposition != 'attachment'):
            if texts:
                text = _content(part)
                if content_type == 'text/html':
                    text = html_to_text(text)
                text = clean(text.replace('\r\n', '\n')).strip()
                if text:
                    self.texts.append(text)
            return
        if not files:
            return
        data = _payload(part)
        if not filename:
            extension = EXTENSIONS.get(content_type) or (
                mimetypes.guess_extension(content_type) or '.bin')[1:]
            filename = 'attachment-%s.%s' % (index, extension)
        self.files.append((filename, content_type, data))

    def read_message(self, part, index, texts, files, depth):
        "A forwarded message: kept as a file, read too when not attached"
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else (
            payload)
        if not isinstance(inner, email.message.Message):
            inner = None
        if files:
            filename = _filename(part, self.charset)
            if not filename:
                subject = _header(inner, 'Subject') if inner else None
                filename = _safe_name(subject or '') if subject else None
                filename = '%s.eml' % (
                    filename or 'message-%s' % index)
            if inner is not None:
                try:
                    data = inner.as_bytes()
                except Exception:
                    data = str(inner).encode('utf-8', 'surrogateescape')
            else:
                data = str(payload).encode('utf-8', 'surrogateescape')
            self.files.append((filename, 'message/rfc822', data))
        if (inner is not None and texts
                and _disposition(part) != 'attachment'):
            # inline (digests): its text is read, its files are in the .eml
            self.read(inner, texts=True, files=False, depth=depth + 1)


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


def headers_size(raw):
    "Return the size of the header section of raw bytes"
    end = len(raw)
    for separator in [b'\r\n\r\n', b'\n\n']:
        position = raw.find(separator)
        if position >= 0:
            end = min(end, position)
    return end


def headers(raw):
    """Return the Mail of raw bytes with only what its headers say:
    sender, subject and Message-ID (fast: the body is not parsed)"""
    mail = Mail()
    try:
        message = email.parser.BytesHeaderParser(
            policy=email.policy.compat32).parsebytes(raw or b'')
    except Exception:
        return mail
    _read_headers(mail, message, None)
    return mail


def _read_headers(mail, message, charset):
    # encoded words decoded after the address is read: they may hide
    # commas, angle brackets or line feeds
    sender = _header(message, 'From', charset, words=False) or ''
    name, address = (addresses(sender) or [('', '')])[0]
    name = _decode_words(name)
    if address and not ADDRESS.fullmatch(address):
        # a broken header (unclosed quote): the last address written in it
        found = ADDRESS.findall(sender)
        name, address = '', found[-1] if found else ''
    if address and '@' in address:
        mail.sender = clean(address.strip().lower())
        mail.sender_name = ' '.join(clean(name).split())
    mail.subject = ' '.join((_header(message, 'Subject', charset) or '')
        .split())
    mail.message_id = normalize_message_id(
        _raw_header(message, 'Message-ID'))


def parse(raw):
    "Return the Mail read from raw bytes; never raises"
    raw = raw or b''
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        return Mail(text=clean(decode_bytes(raw)).strip())
    mail = Mail()
    charset = _charset(message)
    _read_headers(mail, message, charset)
    mail.recipients = recipients(message, charset)
    mail.references = MESSAGE_IDS.findall(' '.join(filter(None, [
                    _header(message, 'In-Reply-To'),
                    _header(message, 'References')])))
    try:
        mail.automatic = is_automatic(message, mail.sender)
    except Exception:
        mail.automatic = False
    reader = _Reader(charset)
    try:
        reader.read(message)
    except Exception:
        if not reader.texts and not reader.files:
            reader.texts.append(clean(decode_bytes(raw)).strip())
    mail.text = '\n\n'.join(reader.texts)
    mail.attachments = reader.files
    return mail


def addresses(value):
    """Return the (name, address) of a header's value; a huge list is
    read by a linear pattern instead of the address parser"""
    if not value:
        return []
    if len(value) > ADDRESSES_SIZE:
        return [('', a) for a in ADDRESS.findall(value)]
    try:
        return getaddresses([value])
    except Exception:
        return [('', a) for a in ADDRESS.findall(value)]


def recipients(message, charset=None):
    "Return the addresses of To and Cc, lower case"
    return [a.lower()
        for h in ['To', 'Cc']
        for _, a in addresses(_header(message, h, charset, words=False))
        if a and '@' in a]


def as_dict(raw):
    """Return what inbound_email's rules match on, read as parse() reads
    the message: never raises"""
    mail = parse(raw)
    value = {
        'subject': mail.subject,
        'text': mail.text,
        'attachments': [{'filename': n, 'type': t, 'data': d}
            for n, t, d in mail.attachments],
        'headers': {},
        }
    if mail.sender:
        value['from'] = mail.sender
    try:
        message = email.message_from_bytes(
            raw or b'', policy=email.policy.compat32)
        charset = _charset(message)
        for key in ['To', 'Cc', 'Bcc']:
            if _raw_header(message, key) is not None:
                value[key.lower()] = [
                    a for _, a in addresses(
                        _header(message, key, charset, words=False))
                    if a]
        value['headers'] = {
            k: _header(message, k, charset) for k, _ in message.raw_items()}
    except Exception:
        pass
    return value
