"Fetch the messages of an IMAP folder that were not processed yet"
import base64
import imaplib
import ssl

DONE = '$ForfaitDone'
SECURITIES = ('ssl', 'starttls', 'none')


def fetch(host, port, security, user, password, folder, handle,
        processed_folder=None, timeout=30, limit=None, ssl_context=None):
    """Call handle(raw_bytes) for each message of folder not processed yet

    A message is processed once handle returned without raising: it is
    flagged $ForfaitDone and \\Seen, then moved to processed_folder if given.
    A message whose handle raised is left untouched and comes again next time.
    Return {'fetched': int, 'processed': int, 'failures': [(uid, repr)]}.
    """
    if security not in SECURITIES:
        raise ValueError("security must be one of %s, not %r"
            % (', '.join(SECURITIES), security))
    if ssl_context is None:
        ssl_context = ssl.create_default_context()
    if security == 'ssl':
        imap = imaplib.IMAP4_SSL(
            host, port, ssl_context=ssl_context, timeout=timeout)
    else:
        imap = imaplib.IMAP4(host, port, timeout=timeout)
    try:
        if security == 'starttls':
            imap.starttls(ssl_context)
        imap.login(user, password)
        return _fetch(imap, folder, handle, processed_folder, limit)
    finally:
        try:
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _fetch(imap, folder, handle, processed_folder, limit):
    _check(imap.select(_mailbox(folder)))
    flags = imap.response('PERMANENTFLAGS')[1][-1]
    # Without PERMANENTFLAGS, all flags are permanent (RFC 3501)
    if flags is None or {b'\\*', DONE.encode()} & set(flags[1:-1].split()):
        search, mark = ('UNKEYWORD', DONE), '(%s \\Seen)' % DONE
    else:
        search, mark = ('UNSEEN',), '(\\Seen)'
    data = _check(imap.uid('SEARCH', *search, 'UNDELETED'))
    uids = sorted(int(uid) for uid in (data[-1] or b'').split())[:limit]
    if uids and processed_folder:
        _create(imap, processed_folder)
    capabilities = _check(imap.capability())[-1].upper().split()

    summary = {'fetched': 0, 'processed': 0, 'failures': []}
    for uid in uids:
        raw = _body(_check(imap.uid('FETCH', str(uid), '(BODY.PEEK[])')))
        if raw is None:
            continue  # expunged meanwhile
        summary['fetched'] += 1
        try:
            handle(raw)
        except Exception as exception:
            summary['failures'].append((uid, repr(exception)))
            continue
        _check(imap.uid('STORE', str(uid), '+FLAGS.SILENT', mark))
        if processed_folder:
            _move(imap, str(uid), _mailbox(processed_folder), capabilities)
        summary['processed'] += 1
    return summary


def _check(response):
    "Return the data of an OK response, raise on any other"
    typ, data = response
    if typ != 'OK':
        raise imaplib.IMAP4.error('%s %r' % (typ, data))
    return data


def _body(data):
    for item in data:
        if isinstance(item, tuple) and b'BODY[]' in item[0].upper():
            return item[1]


def _create(imap, folder):
    "Create folder unless it exists"
    if _check(imap.list('""', _mailbox(folder))) == [None]:
        _check(imap.create(_mailbox(folder)))
        imap.subscribe(_mailbox(folder))


def _move(imap, uid, mailbox, capabilities):
    if b'MOVE' in capabilities:
        _check(imap.uid('MOVE', uid, mailbox))
        return
    _check(imap.uid('COPY', uid, mailbox))
    _check(imap.uid('STORE', uid, '+FLAGS.SILENT', '(\\Deleted)'))
    if b'UIDPLUS' in capabilities:
        _check(imap.uid('EXPUNGE', uid))
    else:
        _check(imap.expunge())


def _mailbox(name):
    "Quote a folder name, encoded in modified UTF-7 (RFC 3501, 5.1.3)"
    encoded, run = [], []

    def flush():
        if run:
            utf16 = ''.join(run).encode('utf-16-be')
            encoded.append('&%s-' % base64.b64encode(utf16).decode()
                .rstrip('=').replace('/', ','))
            run.clear()
    for char in name:
        if ' ' <= char <= '~':
            flush()
            encoded.append('&-' if char == '&' else char)
        else:
            run.append(char)
    flush()
    return '"%s"' % ''.join(encoded).replace('\\', '\\\\').replace('"', '\\"')
