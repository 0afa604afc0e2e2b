"""The client portal: pages rendered on the server for the clients' people.

What every page shares: the Portal (request, database, web user, language),
the portal_route decorator that registers a page, forms, uploads and
downloads; and the static files.

Every page runs as the root user (no record rules apply) and reads only
records of the party of the signed-in web user: each lookup filters on it
and anything else is a 404."""
import hashlib
import hmac
import logging
import mimetypes
import os
import re
import secrets
import unicodedata
import urllib.parse
from functools import wraps

from babel.dates import format_date
from genshi.template import TemplateLoader
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.utils import redirect

from trytond import backend
from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.protocols.wrappers import (
    Response, set_max_request_size, with_pool, with_transaction)
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from ..ledger import format_hours
from ..party import figure_labels

logger = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.dirname(__file__))
LOADER = TemplateLoader(os.path.join(HERE, 'portal'), auto_reload=False)
STATIC = {
    'portal.css': 'text/css; charset=utf-8',
    'portal.js': 'text/javascript; charset=utf-8',
    }
# The largest id a record can have (PostgreSQL's integer, SQLite's too)
ID_MAX = 2 ** 31 - 1
FALLBACK_ERROR = (
    "Une erreur est survenue. Réessayez dans quelques minutes.\n"
    "An error occurred. Try again in a few minutes.\n")
SESSION_COOKIE = 'forfait_session'
CSRF_COOKIE = 'forfait_csrf'
LANGUAGE_COOKIE = 'forfait_lang'
LANGUAGES = ['fr', 'en']
PAGE_SIZE = 20
SUBJECT_MAX = 200
DESCRIPTION_MAX = 20_000
MESSAGE_MAX = 10_000
FILES_MAX = 10
UPLOAD_BODY_MAX = 1_000_000_000  # lowered per request to the configuration
# What clients may upload, by extension, with the first bytes the content
# must start with (None: any text without NUL bytes or markup).
UPLOADS = {
    '.pdf': [b'%PDF-'],
    '.png': [b'\x89PNG\r\n\x1a\n'],
    '.jpg': [b'\xff\xd8\xff'],
    '.jpeg': [b'\xff\xd8\xff'],
    '.gif': [b'GIF87a', b'GIF89a'],
    '.webp': [b'RIFF'],
    '.docx': [b'PK\x03\x04'],
    '.xlsx': [b'PK\x03\x04'],
    '.pptx': [b'PK\x03\x04'],
    '.odt': [b'PK\x03\x04'],
    '.ods': [b'PK\x03\x04'],
    '.zip': [b'PK\x03\x04'],
    '.doc': [b'\xd0\xcf\x11\xe0'],
    '.xls': [b'\xd0\xcf\x11\xe0'],
    '.txt': None,
    '.csv': None,
    }
# Served inline; anything else is downloaded as application/octet-stream.
INLINE_TYPES = {'.pdf', '.png', '.jpg', '.jpeg', '.gif', '.webp'}
STATES = {
    'active': ['draft', 'waiting', 'open'],
    'done': ['done'],
    'cancelled': ['cancelled'],
    }
NOTICES = {
    'signed_out', 'password_sent', 'password_set', 'request_created',
    'message_sent', 'files_added', 'subscription_requested', 'pack_ordered',
    }
SECTIONS = {
    'dashboard.html': 'dashboard',
    'requests.html': 'requests', 'request.html': 'requests',
    'request_new.html': 'requests',
    'forfaits.html': 'forfaits', 'subscribe.html': 'forfaits',
    }
SECURITY_HEADERS = {
    'Content-Security-Policy': (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    }


class Portal:
    "What a page knows: the request, the database, the web user, language"

    def __init__(self, request, pool):
        self.request = request
        self.pool = pool
        self.database = pool.database_name
        self.base = '/%s/portal' % self.database
        self.session = request.cookies.get(SESSION_COOKIE)
        self.cookies = []
        self.errors = {}
        self.template = None
        self.user = self.party = self.language_chosen = None
        self.language = 'fr'
        Company = pool.get('company.company')
        companies = Company.search([], order=[('id', 'ASC')], limit=1)
        self.company = companies[0] if companies else None

    def identify(self):
        "Find the web user of the session and the language of the pages"
        self.user = None
        if self.session:
            User = self.pool.get('web.user')
            user = User.get_user(self.session)
            if user and user.active and user.party:
                self.user = user
        self.party = self.user.party if self.user else None
        self.language = self._language()

    def _language(self):
        choice = self.request.args.get('lang')
        if choice in LANGUAGES:
            self.language_chosen = choice
            return choice
        self.language_chosen = None
        choice = self.request.cookies.get(LANGUAGE_COOKIE)
        if choice in LANGUAGES:
            return choice
        if self.party and self.party.lang and (
                self.party.lang.code[:2] in LANGUAGES):
            return self.party.lang.code[:2]
        return 'fr'

    @property
    def brand(self):
        return self.company.party.rec_name if self.company else 'Web Service'

    @property
    def section(self):
        return SECTIONS.get(self.template)

    def url(self, path='', **query):
        query = {k: v for k, v in query.items() if v not in (None, '')}
        return self.base + '/' + path + (
            '?' + urllib.parse.urlencode(query) if query else '')

    def text(self, key, **variables):
        return gettext('webservice_forfait.msg_portal_%s' % key, **variables)

    @property
    def csrf_token(self):
        if self.session and self.user:
            return hmac.new(
                self.session.encode(), b'forfait-csrf',
                hashlib.sha256).hexdigest()
        token = self.request.cookies.get(CSRF_COOKIE)
        if not token or not re.fullmatch(r'[0-9a-f]{64}', token):
            token = secrets.token_hex(32)
            self.set_cookie(CSRF_COOKIE, token)
            self.request.cookies = dict(self.request.cookies)
            self.request.cookies[CSRF_COOKIE] = token
        return token

    def check_csrf(self):
        given = self.request.form.get('csrf_token', '')
        return hmac.compare_digest(given.encode(), self.csrf_token.encode())

    def set_cookie(self, name, value, max_age=None):
        self.cookies.append((name, value, max_age))

    def finish(self, response):
        for name, value, max_age in self.cookies:
            if value is None:
                response.delete_cookie(name, path=self.base)
            else:
                response.set_cookie(
                    name, value, max_age=max_age, path=self.base,
                    httponly=True, samesite='Lax',
                    secure=self.request.scheme == 'https')
        if self.language_chosen:
            response.set_cookie(
                LANGUAGE_COOKIE, self.language_chosen,
                max_age=365 * 24 * 3600, path=self.base, samesite='Lax',
                httponly=True, secure=self.request.scheme == 'https')
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault('Cache-Control', 'no-store')
        return response

    def render(self, template, status=200, **values):
        pool = self.pool
        Lang = pool.get('ir.lang')
        lang = Lang.get(self.language)
        values.setdefault('title', None)
        self.template = template
        html = LOADER.load(template).generate(
            portal=self, _=self.text, url=self.url, lang=lang,
            duration=format_hours, labels=figure_labels(),
            errors=self.errors,
            date=lambda d: format_date(d, 'long', locale=self.language)
            if d else '',
            amount=lambda a, c: (
                lang.currency(a, c, grouping=True) if a is not None else ''),
            notice=self.notice(), **values).render(
                'html', doctype='html5', encoding='utf-8')
        return Response(
            html, status=status, content_type='text/html; charset=utf-8')

    def notice(self):
        key = self.request.args.get('notice')
        return self.text('notice_%s' % key) if key in NOTICES else None

    def not_found(self):
        return self.render('error.html', status=404,
            title=self.text('not_found'), message=self.text('not_found_text'))

    def not_allowed(self, allowed):
        response = self.render('error.html', status=405,
            title=self.text('not_allowed'),
            message=self.text('not_allowed_text'))
        response.headers['Allow'] = ', '.join(sorted(allowed))
        return response

    def failed(self):
        "The page of an unexpected error: nothing of it is kept or shown"
        Transaction().rollback()
        self.errors, self.cookies = {}, []
        try:
            with Transaction().set_context(language=self.language):
                return self.render('error.html', status=500,
                    title=self.text('server_error'),
                    message=self.text('server_error_text'))
        except Exception:
            logger.exception("Portal error page")
            return Response(
                FALLBACK_ERROR, status=500,
                content_type='text/plain; charset=utf-8')

    def redirect(self, path='', **query):
        return redirect(self.url(path, **query), code=303)


def portal_route(
        path, methods=('GET',), login=True, uploads=False, forms=True):
    """Register a portal page: the session, language and company are set,
    posted forms are checked against CSRF, private pages need a login;
    other methods, ids no record can have and unexpected errors get the
    portal's own error page"""
    allowed = set(methods) | ({'HEAD'} if 'GET' in methods else set())

    def decorator(func):
        @wraps(func)
        def page(request, pool, *args, **kwargs):
            portal = Portal(request, pool)
            try:
                response = serve(portal, func, login, uploads, forms,
                    allowed, *args, **kwargs)
            # with_transaction retries on these (on SQLite, record locks
            # are taken by starting the transaction again)
            except (backend.DatabaseOperationalError, TransactionError,
                    RateLimitException):
                raise
            except Exception:
                logger.exception("Portal page %s", request.path)
                response = portal.failed()
            return portal.finish(response)
        endpoint = with_pool(with_transaction()(page))
        if uploads:
            endpoint = set_max_request_size(UPLOAD_BODY_MAX)(endpoint)
        # every method reaches the page, which answers 405 itself
        app.route('/<database_name>/portal' + path)(endpoint)
        return func
    return decorator


def serve(portal, func, login, uploads, forms, allowed, *args, **kwargs):
    request, pool = portal.request, portal.pool
    company = portal.company.id if portal.company else None
    with Transaction().set_context(company=company):
        portal.identify()
    with Transaction().set_context(
            company=company, language=portal.language):
        if request.method not in allowed:
            return portal.not_allowed(allowed)
        if any(isinstance(v, int) and not 0 < v <= ID_MAX
                for v in kwargs.values()):
            return portal.not_found()
        if uploads:
            request.max_content_length = (
                FILES_MAX * max_upload(pool) + 1_000_000)
        try:
            if login and not portal.user:
                return portal.redirect(
                    'login', next=request.full_path.rstrip('?'))
            elif request.method == 'POST' and forms:
                return check_form(portal) or func(portal, *args, **kwargs)
            else:
                return func(portal, *args, **kwargs)
        except NotFound:
            return portal.not_found()


def safe_next(portal, next_):
    "Return next_ when it is a portal page, else the dashboard"
    if (not next_.startswith(portal.base + '/')
            or '//' in next_[1:] or '\\' in next_
            or any(unicodedata.category(c)[0] == 'C' for c in next_)):
        return portal.url()
    return next_


def check_form(portal):
    "Return the error page of a form too large or without its CSRF token"
    try:
        valid = portal.check_csrf()
    except RequestEntityTooLarge:
        return portal.render('error.html', status=413,
            title=portal.text('too_large'), message=portal.text(
                'too_large_text', count='%s' % FILES_MAX,
                size='%s' % (max_upload(portal.pool) // 1_000_000)))
    if not valid:
        return portal.render('error.html', status=403,
            title=portal.text('form_expired'),
            message=portal.text('form_expired_text'))


def max_upload(pool):
    Config = pool.get('forfait.configuration')
    return Config(1).portal_max_upload or 10_000_000


def clean_filename(name):
    "Keep a file name's letters, digits, dots, dashes and spaces"
    name = unicodedata.normalize('NFC', os.path.basename(
            (name or '').replace('\\', '/')))
    name = ''.join(
        c if (c.isalnum() or c in '._- ()') else '_' for c in name)
    name = re.sub(r'_+', '_', name).strip(' ._') or 'file'
    stem, ext = os.path.splitext(name)
    return stem[:100] + ext[:10].lower()


def check_upload(portal, storage):
    "Return (name, data) or add the reason it is refused to portal.errors"
    name = clean_filename(storage.filename)
    ext = os.path.splitext(name)[1]
    limit = max_upload(portal.pool)
    data = storage.stream.read(limit + 1)
    if len(data) > limit:
        portal.errors.setdefault('files', []).append(portal.text(
                'file_too_large', name=name, size='%s' % (limit // 1_000_000)))
        return
    if not data:
        portal.errors.setdefault('files', []).append(
            portal.text('file_empty', name=name))
        return
    if ext not in UPLOADS:
        portal.errors.setdefault('files', []).append(portal.text(
                'file_type', name=name,
                types=', '.join(sorted(e[1:] for e in UPLOADS))))
        return
    signatures = UPLOADS[ext]
    if signatures is None:
        valid = b'\0' not in data and b'<script' not in data.lower()
    else:
        valid = any(data.startswith(s) for s in signatures)
    if not valid:
        portal.errors.setdefault('files', []).append(
            portal.text('file_content', name=name))
        return
    return name, None, data


def read_files(portal):
    storages = [
        f for f in portal.request.files.getlist('files') if f.filename]
    if len(storages) > FILES_MAX:
        portal.errors['files'] = [
            portal.text('file_count', count='%s' % FILES_MAX)]
        return []
    return [f for f in (check_upload(portal, s) for s in storages) if f]


def form_text(portal, name):
    return (portal.request.form.get(name) or '').strip()


def client_request(portal, number):
    "The request of the client with number, or None"
    Request = portal.pool.get('forfait.request')
    requests = Request.search([
            ('number', '=', number),
            ('party', '=', portal.party.id),
            ], limit=1)
    return requests[0] if requests else None


def download(data, name, inline=False):
    ext = os.path.splitext(name)[1].lower()
    if inline and ext in INLINE_TYPES:
        content_type = mimetypes.types_map.get(ext, 'application/pdf')
        disposition = 'inline'
    else:
        content_type = 'application/octet-stream'
        disposition = 'attachment'
    response = Response(data, content_type=content_type)
    response.headers['Content-Disposition'] = "%s; filename*=UTF-8''%s" % (
        disposition, urllib.parse.quote(name))
    response.headers['Cache-Control'] = 'private, no-store'
    return response


def render_report(portal, report_name, records):
    Report = portal.pool.get(report_name, type='report')
    with Transaction().set_context(language=portal.language):
        ext, content, _, name = Report.execute([r.id for r in records], {})
    return download(bytes(content), '%s.%s' % (name, ext), inline=True)


def state_label(portal, state):
    return portal.text('state_%s' % state)


@portal_route('/static/<name>', login=False)
def static(portal, name):
    if name not in STATIC:
        raise NotFound()
    with open(os.path.join(HERE, 'portal', name), 'rb') as f:
        response = Response(f.read(), content_type=STATIC[name])
    response.headers['Cache-Control'] = 'public, max-age=3600'
    return response


@portal_route('/<path:path>', login=False, forms=False, methods=(
        'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'))
def unknown(portal, path):
    "Any other address of the portal"
    return portal.not_found()
