"""The account pages: /session, /login, /logout, /password/forgot,
/password/reset"""
import datetime

from werkzeug.utils import redirect

from trytond.exceptions import RateLimitException, UserError
from trytond.protocols.wrappers import Response

from .common import (
    CSRF_COOKIE, SESSION_COOKIE, form_text, logger, portal_route, safe_next)


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
    next_ = safe_next(portal, request.values.get('next', ''))
    if portal.user:
        return redirect(next_, code=303)
    email = form_text(portal, 'email').lower()
    if request.method == 'POST':
        try:
            user = User.portal_authenticate(
                email, request.form.get('password', ''))
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
            if User.portal_set_password(email, token, password):
                return portal.redirect('login', notice='password_set')
            portal.errors['form'] = portal.text('password_link_invalid')
    return portal.render('password_reset.html',
        title=portal.text('password_choose'), email=email, token=token)
