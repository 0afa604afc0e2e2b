"""The requests: /requests, /requests/new, /requests/<number> with its
messages, files and update report"""
import math

from ..request import CATEGORIES
from .common import (
    DESCRIPTION_MAX, MESSAGE_MAX, PAGE_SIZE, STATES, SUBJECT_MAX, UPLOADS,
    clean_filename, client_request, download, form_text, max_upload,
    portal_route, read_files, render_report, state_label)


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
    args = portal.request.args
    values = {
        'subject': form_text(portal, 'subject') if form else (
            args.get('subject', '').strip()[:SUBJECT_MAX]),
        'category': form_text(portal, 'category') if form else (
            args.get('category') if args.get('category') in dict(CATEGORIES)
            else 'content'),
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
    # the time logged so far, as the staff log it
    lines = sorted(request.timesheet_lines, key=lambda l: (l.date, l.id))
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
