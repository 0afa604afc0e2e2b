"""The client portal: pages rendered on the server for the clients' people.

Every page runs as the root user (no record rules apply) and reads only
records of the party of the signed-in web user: each lookup filters on it
and anything else is a 404."""
import datetime
import hashlib
import hmac
import logging
import math
import mimetypes
import os
import re
import secrets
import unicodedata
import urllib.parse
from functools import wraps

from genshi.template import TemplateLoader
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.utils import redirect

from trytond.exceptions import RateLimitException, UserError
from trytond.i18n import gettext
from trytond.protocols.wrappers import (
    Response, set_max_request_size, with_pool, with_transaction)
from trytond.transaction import Transaction
from trytond.wsgi import app

from .ledger import ZERO, allocate, format_hours
from .party import client_figures, figure_labels, figures_as_of
from .request import CATEGORIES

logger = logging.getLogger(__name__)
HERE = os.path.dirname(__file__)
LOADER = TemplateLoader(os.path.join(HERE, 'portal'), auto_reload=False)
STATIC = {
    'portal.css': 'text/css; charset=utf-8',
    'portal.js': 'text/javascript; charset=utf-8',
    }
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
    'message_sent', 'files_added', 'subscription_requested',
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
            date=lambda d: lang.strftime(d) if d else '',
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

    def redirect(self, path='', **query):
        return redirect(self.url(path, **query), code=303)


def portal_route(path, methods=('GET',), login=True, uploads=False):
    """Register a portal page: the session, language and company are set,
    posted forms are checked against CSRF, private pages need a login"""
    def decorator(func):
        @wraps(func)
        def page(request, pool, *args, **kwargs):
            portal = Portal(request, pool)
            company = portal.company.id if portal.company else None
            with Transaction().set_context(company=company):
                portal.identify()
            with Transaction().set_context(
                    company=company, language=portal.language):
                if uploads:
                    request.max_content_length = (
                        FILES_MAX * max_upload(pool) + 1_000_000)
                if login and not portal.user:
                    response = portal.redirect(
                        'login', next=request.full_path.rstrip('?'))
                elif request.method == 'POST':
                    response = check_form(portal) or func(
                        portal, *args, **kwargs)
                else:
                    response = func(portal, *args, **kwargs)
            return portal.finish(response)
        endpoint = with_pool(with_transaction()(page))
        if uploads:
            endpoint = set_max_request_size(UPLOAD_BODY_MAX)(endpoint)
        app.route(
            '/<database_name>/portal' + path, methods=list(methods))(endpoint)
        return func
    return decorator


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


# Pages anyone may open

@portal_route('/static/<name>', login=False)
def static(portal, name):
    if name not in STATIC:
        raise NotFound()
    with open(os.path.join(HERE, 'portal', name), 'rb') as f:
        response = Response(f.read(), content_type=STATIC[name])
    response.headers['Cache-Control'] = 'public, max-age=3600'
    return response


@portal_route('/session', login=False)
def session(portal):
    "Only checks the session: the baseline of the portal's benchmark"
    if not portal.user:
        return Response('', status=401)
    return Response('ok', content_type='text/plain')


@portal_route('/login', methods=('GET', 'POST'), login=False)
def login(portal):
    pool = portal.pool
    User = pool.get('web.user')
    request = portal.request
    next_ = request.values.get('next', '')
    if not next_.startswith(portal.base + '/') or '//' in next_[1:]:
        next_ = portal.url()
    if portal.user:
        return redirect(next_, code=303)
    email = form_text(portal, 'email').lower()
    if request.method == 'POST':
        try:
            user = User.authenticate(email, request.form.get('password', ''))
        except RateLimitException:
            portal.errors['form'] = portal.text('login_rate_limited')
            return portal.render('login.html', status=429,
                title=portal.text('sign_in'), email=email, next=next_)
        if user and user.active and user.party:
            portal.set_cookie(SESSION_COOKIE, user.new_session())
            portal.set_cookie(CSRF_COOKIE, None)
            return redirect(next_, code=303)
        portal.errors['form'] = portal.text('login_failed')
        return portal.render('login.html', status=401,
            title=portal.text('sign_in'), email=email, next=next_)
    return portal.render('login.html', title=portal.text('sign_in'),
        email=email, next=next_)


@portal_route('/logout', methods=('POST',))
def logout(portal):
    Session = portal.pool.get('web.user.session')
    Session.remove(portal.session)
    portal.set_cookie(SESSION_COOKIE, None)
    return portal.redirect('login', notice='signed_out')


@portal_route('/password/forgot', methods=('GET', 'POST'), login=False)
def password_forgot(portal):
    "Always the same answer, whether the address has an account or not"
    User = portal.pool.get('web.user')
    email = form_text(portal, 'email').lower()
    if portal.request.method == 'POST':
        if not email:
            portal.errors['email'] = portal.text('email_required')
        else:
            users = User.search([('email', '=', email)], limit=1)
            now = datetime.datetime.now()
            for user in users:
                if user.party and not (
                        user.reset_password_token_expire
                        and user.reset_password_token_expire > now):
                    try:
                        user.send_password_link()
                    except UserError:
                        # the same answer for every address, even so
                        logger.exception("Password link for %s", user.id)
            return portal.redirect('login', notice='password_sent')
    return portal.render('password_forgot.html',
        title=portal.text('password_forgot'), email=email)


@portal_route('/password/reset', methods=('GET', 'POST'), login=False)
def password_reset(portal):
    pool = portal.pool
    User = pool.get('web.user')
    ResUser = pool.get('res.user')
    values = portal.request.values
    email, token = values.get('email', ''), values.get('token', '')
    if portal.request.method == 'POST':
        password = portal.request.form.get('password', '')
        if password != portal.request.form.get('confirm', ''):
            portal.errors['confirm'] = portal.text('password_mismatch')
        else:
            try:
                ResUser.validate_password(password, [])
            except UserError as error:
                portal.errors['password'] = error.message
        if not portal.errors:
            if User.set_password_token(email, token, password):
                return portal.redirect('login', notice='password_set')
            portal.errors['form'] = portal.text('password_link_invalid')
    return portal.render('password_reset.html',
        title=portal.text('password_choose'), email=email, token=token)


# The client's pages

@portal_route('/')
def dashboard(portal):
    pool = portal.pool
    Credit = pool.get('forfait.credit')
    Request = pool.get('forfait.request')
    Date = pool.get('ir.date')
    Config = pool.get('forfait.configuration')
    today = Date.today()
    party = portal.party
    credits = Credit.search([
            ('party', '=', party.id),
            ('start_date', '<=', today),
            ('end_date', '>=', today),
            ('state', '!=', 'expired'),
            ], order=[
            ('end_date', 'ASC'), ('start_date', 'ASC'), ('id', 'ASC')])
    figures = party.forfait_figures()
    pending = gauge_pending(figures['forfait_pending'], credits)
    low = min([t for t in Config(1).thresholds() if t < 100], default=80)
    gauges = [gauge(c, pending.get(c.id, ZERO), today, low) for c in credits]
    recent = Request.search(
        [('party', '=', party.id)], order=[('id', 'DESC')], limit=5)
    return portal.render('dashboard.html', title=portal.text('dashboard'),
        party=party, gauges=gauges, recent=recent,
        figures=client_figures(figures), as_of=figures_as_of(today),
        overdraft=figures['forfait_overdraft'],
        state_label=state_label)


def gauge_pending(pending, credits):
    """Share the pending time between the gauges as it will be deducted;
    what no credit can hold shows on the last one, so the gauges add up to
    the pending figure"""
    shares = dict(allocate(
            pending, [(c.id, max(c.remaining, ZERO)) for c in credits]))
    if None in shares and credits:
        last = credits[-1].id
        shares[last] = shares.get(last, ZERO) + shares.pop(None)
    return shares


def gauge(credit, pending, today, low):
    "The figures of a credit's gauge and the projection of its end"
    hours = credit.hours or ZERO
    used, left = credit.consumed, credit.remaining
    scale = max(hours, used + pending, datetime.timedelta(seconds=1))
    elapsed = (today - credit.start_date).days + 1
    if left <= ZERO:
        projection = 'used_up', None
    elif used <= ZERO:
        projection = 'not_started', None
    else:
        days = math.floor(left / (used / elapsed))
        runs_out = today + datetime.timedelta(days=days)
        if runs_out >= credit.end_date:
            projection = 'lasts_to_end', credit.end_date
        else:
            projection = 'lasts_until', runs_out
    percent = (used + pending) / hours * 100 if hours else 100
    return {
        'credit': credit,
        'hours': hours, 'used': used, 'left': left, 'pending': pending,
        'used_width': round(min(used, scale) / scale * 100, 1),
        'pending_width': round(min(pending, scale) / scale * 100, 1),
        'projection': projection,
        'low': percent >= low,
        'negative': left < ZERO,
        }


def state_label(portal, state):
    return portal.text('state_%s' % state)


@portal_route('/requests')
def requests(portal):
    Request = portal.pool.get('forfait.request')
    args = portal.request.args
    state = args.get('state', '')
    query = args.get('q', '').strip()[:100]
    domain = [('party', '=', portal.party.id)]
    if state in STATES:
        domain.append(('state', 'in', STATES[state]))
    if query:
        domain.append(['OR',
                ('number', 'ilike', '%' + query + '%'),
                ('subject', 'ilike', '%' + query + '%'),
                ])
    count = Request.search_count(domain)
    pages = max(1, math.ceil(count / PAGE_SIZE))
    try:
        page = min(max(1, int(args.get('page', 1))), pages)
    except ValueError:
        page = 1
    records = Request.search(
        domain, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        order=[('request_date', 'DESC'), ('id', 'DESC')])
    return portal.render('requests.html', title=portal.text('requests'),
        records=records, count=count, page=page, pages=pages,
        state=state if state in STATES else '', query=query,
        states=list(STATES), state_label=state_label)


@portal_route('/requests/new', methods=('GET', 'POST'), uploads=True)
def request_new(portal):
    Request = portal.pool.get('forfait.request')
    form = portal.request.form if portal.request.method == 'POST' else {}
    values = {
        'subject': form_text(portal, 'subject') if form else '',
        'category': form_text(portal, 'category') if form else 'content',
        'description': form_text(portal, 'description') if form else '',
        }
    if portal.request.method == 'POST':
        files = read_files(portal)
        if not values['subject']:
            portal.errors['subject'] = portal.text('subject_required')
        elif len(values['subject']) > SUBJECT_MAX:
            portal.errors['subject'] = portal.text(
                'subject_too_long', max='%s' % SUBJECT_MAX)
        if values['category'] not in dict(CATEGORIES):
            portal.errors['category'] = portal.text('category_invalid')
        if len(values['description']) > DESCRIPTION_MAX:
            portal.errors['description'] = portal.text(
                'description_too_long', max='%s' % DESCRIPTION_MAX)
        if not portal.errors:
            request = Request.create_from_portal(
                portal.user, values['subject'], values['category'],
                values['description'], files)
            return portal.redirect(
                'requests/%s' % request.number, notice='request_created')
    return portal.render('request_new.html', status=400 if portal.errors
        else 200, title=portal.text('new_request'), values=values,
        categories=category_choices(portal),
        max_size='%s' % (max_upload(portal.pool) // 1_000_000),
        types=', '.join(sorted(e[1:] for e in UPLOADS)))


def category_choices(portal):
    Request = portal.pool.get('forfait.request')
    return Request.fields_get(['category'])['category']['selection']


@portal_route('/requests/<number>')
def request_detail(portal, number):
    pool = portal.pool
    Attachment = pool.get('ir.attachment')
    request = client_request(portal, number)
    if not request:
        return portal.not_found()
    attachments = Attachment.search([
            ('resource', '=', str(request)),
            ], order=[('create_date', 'ASC'), ('id', 'ASC')])
    lines = []
    if request.state == 'done':
        lines = sorted(
            request.timesheet_lines, key=lambda l: (l.date, l.id))
    return portal.render('request.html', title=request.number,
        record=request, messages=request.portal_messages(),
        attachments=attachments, lines=lines, state_label=state_label,
        max_size='%s' % (max_upload(portal.pool) // 1_000_000),
        types=', '.join(sorted(e[1:] for e in UPLOADS)),
        message=form_text(portal, 'message')
        if portal.request.method == 'POST' else '')


@portal_route('/requests/<number>/messages', methods=('POST',))
def request_message(portal, number):
    request = client_request(portal, number)
    if not request:
        return portal.not_found()
    content = form_text(portal, 'message')
    if not content:
        portal.errors['message'] = portal.text('message_required')
    elif len(content) > MESSAGE_MAX:
        portal.errors['message'] = portal.text(
            'message_too_long', max='%s' % MESSAGE_MAX)
    elif request.state == 'cancelled':
        portal.errors['message'] = portal.text('request_cancelled')
    if portal.errors:
        response = request_detail(portal, number)
        response.status_code = 400
        return response
    request.post_from_portal(portal.user, content)
    return portal.redirect('requests/%s' % number, notice='message_sent')


@portal_route('/requests/<number>/files', methods=('POST',), uploads=True)
def request_files(portal, number):
    request = client_request(portal, number)
    if not request:
        return portal.not_found()
    files = read_files(portal)
    if not files and not portal.errors:
        portal.errors['files'] = [portal.text('file_required')]
    if request.state == 'cancelled':
        portal.errors['files'] = [portal.text('request_cancelled')]
    if portal.errors:
        response = request_detail(portal, number)
        response.status_code = 400
        return response
    request.attach_files(files)
    return portal.redirect('requests/%s' % number, notice='files_added')


@portal_route('/requests/<number>/files/<int:attachment_id>')
def request_file(portal, number, attachment_id):
    Attachment = portal.pool.get('ir.attachment')
    request = client_request(portal, number)
    if not request:
        return portal.not_found()
    attachments = Attachment.search([
            ('id', '=', attachment_id),
            ('resource', '=', str(request)),
            ], limit=1)
    if not attachments or attachments[0].type != 'data':
        return portal.not_found()
    attachment, = attachments
    return download(attachment.data, clean_filename(attachment.name))


@portal_route('/requests/<number>/report.pdf')
def request_report(portal, number):
    request = client_request(portal, number)
    if not request or request.state != 'done':
        return portal.not_found()
    return render_report(portal, 'forfait.request.update_report', [request])


@portal_route('/forfaits')
def forfaits(portal):
    pool = portal.pool
    Credit = pool.get('forfait.credit')
    Invoice = pool.get('account.invoice')
    Subscription = pool.get('sale.subscription')
    party = portal.party
    credits = Credit.search(
        [('party', '=', party.id)],
        order=[('start_date', 'DESC'), ('id', 'DESC')])
    invoices = Invoice.search([
            ('party', '=', party.id),
            ('type', '=', 'out'),
            ('state', 'in', ['posted', 'paid']),
            ], order=[('invoice_date', 'DESC'), ('id', 'DESC')], limit=50)
    subscriptions = Subscription.search([
            ('party', '=', party.id),
            ('state', 'in', ['quotation', 'running']),
            ], order=[('start_date', 'DESC'), ('id', 'DESC')])
    return portal.render('forfaits.html', title=portal.text('forfaits'),
        credits=credits, invoices=invoices, subscriptions=subscriptions)


@portal_route('/forfaits/<int:credit_id>/statement.pdf')
def credit_statement(portal, credit_id):
    Credit = portal.pool.get('forfait.credit')
    credits = Credit.search([
            ('id', '=', credit_id),
            ('party', '=', portal.party.id),
            ], limit=1)
    if not credits:
        return portal.not_found()
    return render_report(portal, 'forfait.credit.statement', credits)


@portal_route('/subscribe', methods=('GET', 'POST'))
def subscribe(portal):
    pool = portal.pool
    Service = pool.get('sale.subscription.service')
    Subscription = pool.get('sale.subscription')
    offers = forfait_offers(portal)
    pending = Subscription.search([
            ('party', '=', portal.party.id),
            ('state', '=', 'quotation'),
            ], limit=1)
    if portal.request.method == 'POST':
        choice = form_text(portal, 'service')
        services = [o['service'] for o in offers
            if str(o['service'].id) == choice]
        if pending:
            portal.errors['form'] = portal.text('subscription_pending')
        elif not services:
            portal.errors['service'] = portal.text('service_invalid')
        else:
            service, = Service.browse(services)
            try:
                Subscription.create_from_portal(portal.user, service)
            except UserError:
                logger.exception("Subscription of %s", portal.party.id)
                Transaction().rollback()
                portal.errors['form'] = portal.text('subscription_failed')
            else:
                return portal.redirect(
                    'forfaits', notice='subscription_requested')
    return portal.render('subscribe.html', status=400 if portal.errors
        else 200, title=portal.text('subscribe'), offers=offers,
        pending=pending)


def forfait_offers(portal):
    "The forfaits on sale with their price, taxes and hours"
    pool = portal.pool
    Service = pool.get('sale.subscription.service')
    Tax = pool.get('account.tax')
    Date = pool.get('ir.date')
    services = Service.search([
            ('product.template.forfait', '=', True),
            ('product.template.salable', '=', True),
            ('product.active', '=', True),
            ], order=[('product.template.forfait_monthly_hours', 'ASC')])
    currency = portal.company.currency if portal.company else None
    offers = []
    for service in services:
        template = service.product.template
        price = service.product.list_price_used or template.list_price
        if price is None or currency is None:
            continue
        monthly = template.forfait_invoicing == 'monthly'
        if monthly:
            price = currency.round(price / 12)
        taxes = Tax.compute(
            Tax.browse(service.product.customer_taxes_used), price, 1,
            Date.today())
        tax = currency.round(sum((t['amount'] for t in taxes), 0))
        offers.append({
                'service': service,
                'name': template.name,
                'monthly_hours': template.forfait_monthly_hours,
                'yearly_hours': template.forfait_monthly_hours * 12,
                'monthly': monthly,
                'price': price, 'tax': tax, 'total': price + tax,
                'currency': currency,
                })
    return offers
