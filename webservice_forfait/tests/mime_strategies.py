"""Hypothesis strategies of MIME messages as mail clients write them, with
what a reader must find in them: the words of every text part, in order,
and every file with its name

A generated message is (raw bytes, texts, files): texts the list of the
words of each text part read as the body, files the decoded names of the
parts kept as files (None for a file without a name).
"""
import base64
import hashlib
import html
import quopri

from hypothesis import strategies as st

LATIN = 'abcdefghijklmnopqrstuvwxyzéèêàâçùüôîïë'
CHARSETS = {
    'utf-8': LATIN + 'œ€ł', 'iso-8859-1': LATIN, 'windows-1252': LATIN + 'œ€',
    'us-ascii': 'abcdefghijklmnopqrstuvwxyz', 'utf-16': LATIN + 'œ€',
    }
ENCODINGS = ['7bit', '8bit', 'quoted-printable', 'base64']
CRLF = b'\r\n'


@st.composite
def words(draw, alphabet):
    return draw(st.lists(
            st.text(alphabet, min_size=1, max_size=12), min_size=1,
            max_size=12))


def encode_body(data, encoding):
    if encoding == 'base64':
        text = base64.b64encode(data).decode()
        return '\r\n'.join(
            text[i:i + 76] for i in range(0, len(text), 76)).encode()
    if encoding == 'quoted-printable':
        return quopri.encodestring(data.replace(CRLF, b'\n')).replace(
            b'\n', CRLF)
    return data


def header_lines(headers):
    return b''.join(k.encode() + b': ' + v + CRLF for k, v in headers)


@st.composite
def name_parameter(draw, key, name):
    "A file name parameter as the clients write it"
    style = draw(st.sampled_from(['rfc2231', 'rfc2047', 'raw']))
    if name.isascii():
        return b'%s="%s"' % (key.encode(), name.encode())
    if style == 'rfc2231':
        quoted = ''.join(
            chr(b) if b < 128 and chr(b).isalnum() else '%%%02X' % b
            for b in name.encode('utf-8'))
        return b"%s*=utf-8''%s" % (key.encode(), quoted.encode())
    if style == 'rfc2047':
        encoded = base64.b64encode(name.encode('utf-8')).decode()
        return b'%s="=?utf-8?b?%s?="' % (key.encode(), encoded.encode())
    return b'%s="%s"' % (key.encode(), name.encode('utf-8'))


@st.composite
def text_part(draw, subtype=None):
    "A text part read as the body: (bytes, [words], [])"
    subtype = subtype or draw(st.sampled_from(['plain', 'html']))
    charset = draw(st.sampled_from(sorted(CHARSETS)))
    encoding = draw(st.sampled_from(ENCODINGS))
    if charset == 'utf-16':
        encoding = 'base64'
    content = draw(words(CHARSETS[charset]))
    nul = draw(st.booleans())
    text = ' '.join(content)
    if subtype == 'html':
        text = '<html><body><p>%s</p></body></html>' % html.escape(text)
    data = text.encode(charset)
    if nul and charset != 'utf-16':
        data = data.replace(b' ', b' \x00', 1)
    headers = [
        ('Content-Type', b'text/%s; charset="%s"' % (
                subtype.encode(), charset.encode())),
        ('Content-Transfer-Encoding', encoding.encode())]
    if draw(st.booleans()):
        headers.append(('Content-Disposition', b'inline'))
    return (header_lines(headers) + CRLF + encode_body(data, encoding),
        [content], [])


@st.composite
def file_part(draw):
    "A part kept as a file: (bytes, [], [name or None])"
    kind = draw(st.sampled_from([
                'image/png', 'application/pdf', 'text/plain', 'text/html',
                'application/octet-stream']))
    name = None
    if kind.startswith('text/') or draw(st.booleans()):
        base = draw(st.text(LATIN + 'ABC _-', min_size=1, max_size=16))
        base = ' '.join(base.split()).strip(' .') or 'fichier'
        name = base + '.' + kind.split('/')[1][:4]
    data = draw(st.binary(max_size=200))
    encoding = 'base64'
    params = b''
    disposition = draw(st.sampled_from([None, 'attachment', 'inline']))
    if name:
        params = b'; ' + draw(name_parameter('name', name))
        if disposition is None and not kind.startswith('text/'):
            disposition = draw(st.sampled_from([None, 'attachment']))
    elif kind.startswith('text/'):
        disposition = 'attachment'
    headers = [('Content-Type', kind.encode() + params),
        ('Content-Transfer-Encoding', encoding.encode())]
    if disposition:
        value = disposition.encode()
        if name:
            value += b'; ' + draw(name_parameter('filename', name))
        headers.append(('Content-Disposition', value))
    return (header_lines(headers) + CRLF + encode_body(data, encoding),
        [], [name])


def multipart(subtype, children, boundary, extra=b''):
    # unique to the content, so that a nested part never has the same
    content = b''.join(raw for raw, _, _ in children)
    boundary += hashlib.md5(content + boundary).hexdigest()[:12].encode()
    body = b''.join(
        b'--' + boundary + CRLF + raw + CRLF for raw, _, _ in children)
    raw = (header_lines([('Content-Type', b'multipart/%s; boundary="%s"%s'
                    % (subtype.encode(), boundary, extra))]) + CRLF
        + b'This is a multi-part message in MIME format.' + CRLF
        + body + b'--' + boundary + b'--' + CRLF)
    return raw


def boundaries():
    return st.text('abcdefABCDEF0123456789', min_size=8, max_size=20).map(
        lambda b: ('=_' + b).encode())


@st.composite
def alternative(draw):
    "plain and html of the same words, the html maybe related to an image"
    plain = draw(text_part('plain'))
    content = plain[1]
    charset = 'utf-8'
    text = '<p>%s</p>' % html.escape(' '.join(content[0]))
    html_raw = (header_lines([
                ('Content-Type', b'text/html; charset=utf-8'),
                ('Content-Transfer-Encoding', b'base64')]) + CRLF
        + encode_body(text.encode(charset), 'base64'))
    html_part = (html_raw, content, [])
    files = []
    if draw(st.booleans()):
        image = draw(file_part())
        files = image[2]
        html_part = (multipart('related', [html_part, image],
                draw(boundaries())), content, files)
    children = [plain, html_part]
    return multipart('alternative', children, draw(boundaries())), (
        content), files


@st.composite
def digest(draw):
    children, texts, files = [], [], []
    for _ in range(draw(st.integers(1, 3))):
        subject = draw(st.text('abcdefgh', min_size=3, max_size=8))
        content = draw(words(CHARSETS['us-ascii']))
        inner = (b'From: a@example.com\r\nSubject: ' + subject.encode()
            + b'\r\n\r\n' + ' '.join(content).encode() + CRLF)
        children.append((CRLF + inner, [content], [subject + '.eml']))
        texts.append(content)
        files.append(subject + '.eml')
    return multipart('digest', children, draw(boundaries())), texts, files


@st.composite
def tree(draw, depth=0):
    "A MIME tree: (bytes, texts in order, files)"
    leaves = [text_part(), file_part()]
    if depth >= 3:
        return draw(st.one_of(*leaves))
    kind = draw(st.sampled_from(
            ['text', 'file', 'mixed', 'related', 'alternative', 'signed',
                'digest']))
    if kind == 'text':
        return draw(text_part())
    if kind == 'file':
        return draw(file_part())
    if kind == 'alternative':
        raw, content, files = draw(alternative())
        return raw, [content[0]], files
    if kind == 'digest':
        return draw(digest())
    if kind == 'signed':
        content = draw(tree(depth + 1))
        signature = (header_lines([
                    ('Content-Type',
                        b'application/pgp-signature; name="signature.asc"'),
                    ('Content-Disposition',
                        b'attachment; filename="signature.asc"')])
            + CRLF + b'-----BEGIN PGP SIGNATURE-----' + CRLF)
        children = [content, (signature, [], ['signature.asc'])]
        extra = b'; protocol="application/pgp-signature"; micalg=pgp-sha256'
    else:
        children = draw(st.lists(tree(depth + 1), min_size=1, max_size=4))
        extra = b''
    raw = multipart(kind, children, draw(boundaries()), extra)
    return (raw, [t for c in children for t in c[1]],
        [f for c in children for f in c[2]])


@st.composite
def messages(draw, sender='fuzz@example.org'):
    "A whole message: (raw bytes, texts, files, message_id)"
    body, texts, files = draw(tree())
    number = draw(st.integers(0, 10 ** 12))
    message_id = '<fuzz-%s@example.org>' % number
    headers = []
    if draw(st.booleans()):
        headers.append(('From', b'Fuzz <%s>' % sender.encode()))
    else:
        headers.append(('From', b'=?utf-8?q?Fuzz=0Aer?= <%s>'
                % sender.encode()))
    headers.append(('To', draw(st.sampled_from([
                        b'update@webservice.mq',
                        b'unlisted-recipients:; (no To-header on input)',
                        b'undisclosed-recipients:;']))))
    subject = draw(st.sampled_from([
                b'Fuzz', b'=?utf-8?q?Mise_=C3=A0_jour?=',
                'Mise à jour été'.encode('latin-1'), b'']))
    headers.append(('Subject', subject))
    folded = draw(st.booleans())
    headers.append(('Message-ID', (b'\r\n\t' if folded else b'')
            + message_id.encode()))
    if draw(st.booleans()):
        headers.append(('MIME-Version', b'1.0'))
    return header_lines(headers) + body, texts, files, message_id
