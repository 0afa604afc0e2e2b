"The update report and the forfait statement, HTML rendered to PDF"
import base64
import os
import re
from collections import defaultdict

import weasyprint
from genshi.core import Markup

from trytond.pool import Pool
from trytond.report import Report
from trytond.transaction import Transaction

from .ledger import ZERO, format_hours
from .notification import client_language
from .party import client_figures, figure_labels, figures_as_of

STYLESHEET = os.path.join(os.path.dirname(__file__), 'report', 'forfait.css')


# words longer than this get a break opportunity every BREAK_EVERY
# characters: WeasyPrint's overflow-wrap on one long word is quadratic
LONG_WORD = re.compile(r'\S{80,}')
BREAK_EVERY = 40


def breakable(text):
    "Return text with zero-width spaces in its very long words"
    def split(match):
        word = match.group()
        return '\u200b'.join(
            word[i:i + BREAK_EVERY] for i in range(0, len(word), BREAK_EVERY))
    return LONG_WORD.sub(split, text or '')


def _lines(text):
    return breakable((text or '').strip())


class ForfaitReport(Report):
    """What both documents share: the agency's and the client's blocks,
    printed in the client's language whoever prints them"""

    @classmethod
    def client(cls, record):
        "Return the party the document is for"
        return record.party

    @classmethod
    def header_key(cls, record, data):
        return super().header_key(record, data) + (
            ('language', client_language(cls.client(record))),)

    @classmethod
    def _execute(cls, records, header, data, action):
        with Transaction().set_context(language=header.get('language')):
            return super()._execute(records, header, data, action)

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        with open(STYLESHEET, encoding='utf-8') as f:
            context['stylesheet'] = Markup(f.read())
        return context

    @classmethod
    def convert(cls, report, data, **kwargs):
        # the logo is inlined as a data: URI, which Tryton's fetcher refuses
        if report.template_extension == 'html' and report.extension == 'pdf':
            return 'pdf', weasyprint.HTML(
                string=data,
                url_fetcher=weasyprint.URLFetcher(allowed_protocols={'data'}),
                ).write_pdf()
        return super().convert(report, data, **kwargs)

    @classmethod
    def date(cls, value):
        return cls.format_date(value) if value else None

    @classmethod
    def parties(cls, company, party):
        "Return the header values of the agency and the client"
        logo = None
        if company.logo:
            logo = 'data:image/png;base64,' + base64.b64encode(
                company.logo).decode()
        company_address = company.party.address_get()
        client_address = party.address_get() if party else None
        return {
            'company_name': company.party.name,
            'company_address': _lines(
                company_address.full_address if company_address else ''),
            'company_logo': logo,
            'client_name': party.name if party else '',
            'client_address': _lines(
                client_address.full_address if client_address else ''),
            'printed': cls.date(Pool().get('ir.date').today()),
            }


class UpdateReport(ForfaitReport):
    __name__ = 'forfait.request.update_report'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        Request = Pool().get('forfait.request')
        context['updates'] = [
            cls.update(r) for r in Request.browse([r.id for r in records])]
        return context

    @classmethod
    def update(cls, request):
        net = defaultdict(lambda: ZERO)
        for consumption in request.consumptions:
            net[consumption.credit] += consumption.duration
        credits = sorted(
            (c for c, d in net.items() if c and d),
            key=lambda c: (c.end_date, c.id))
        party = request.party
        values = cls.parties(request.company, party)
        values.update({
                'contact_email': request.contact.value
                if request.contact else None,
                'number': request.number,
                'subject': breakable(request.subject),
                'category': request.category_string,
                'channel': request.channel_string,
                'request_date': cls.date(request.request_date),
                'done_date': cls.date(request.done_date),
                'description': _lines(request.description),
                'lines': [{
                        'date': cls.date(l.date),
                        'employee': l.employee.rec_name,
                        'description': breakable(l.description),
                        'duration': format_hours(l.duration),
                        'billable': l.billable,
                        } for l in sorted(
                        request.timesheet_lines,
                        key=lambda l: (l.date, l.id))],
                'spent': format_hours(request.time_spent or ZERO),
                'goodwill': format_hours(request.time_goodwill or ZERO),
                'billed': format_hours(request.time_billed or ZERO),
                'deductions': [{
                        'credit': c.party.name,
                        'period': '%s - %s' % (
                            cls.date(c.start_date), cls.date(c.end_date)),
                        'duration': format_hours(net[c]),
                        } for c in credits],
                'overdraft': format_hours(net[None])
                if net[None] > ZERO else None,
                'credit_end': cls.date(credits[-1].end_date)
                if credits else None,
                })
        values.update(cls.figures(request))
        return values

    @classmethod
    def figures(cls, request):
        """The client's figures on the day the request was done, whenever
        the report is printed, and the heading that says so"""
        pool = Pool()
        date = request.done_date or pool.get('ir.date').today()
        if not request.party:
            return {'figures': [], 'as_of': None, 'negative': False}
        with Transaction().set_context(company=request.company.id):
            figures = request.party.forfait_figures(date=date)
        return {
            'figures': client_figures(figures, past=True),
            'as_of': figures_as_of(date, past=True),
            'negative': figures['forfait_remaining'] < ZERO,
            }


class CreditStatement(ForfaitReport):
    __name__ = 'forfait.credit.statement'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        context['statements'] = [
            cls.statement(c) for c in cls.credits(records, data)]
        return context

    @classmethod
    def credits(cls, records, data):
        Credit = Pool().get('forfait.credit')
        return Credit.browse([r.id for r in records])

    @classmethod
    def statement(cls, credit):
        party = credit.party
        with Transaction().set_context(company=credit.company.id):
            today = Pool().get('ir.date').today()
            figures = party.forfait_figures()
        labels = figure_labels()
        values = cls.parties(credit.company, party)
        values.update({
                'credit': '%s (%s - %s)' % (
                    format_hours(credit.hours), cls.date(credit.start_date),
                    cls.date(credit.end_date)),
                'start': cls.date(credit.start_date),
                'end': cls.date(credit.end_date),
                'state': credit.state_string,
                'expired': credit.end_date < today,
                'hours': format_hours(credit.hours),
                'consumed': format_hours(credit.consumed),
                'remaining': format_hours(credit.remaining),
                'labels': labels,
                'figures': client_figures(figures),
                'as_of': figures_as_of(today),
                'rows': [{
                        'date': cls.date(c.date),
                        'number': c.request.number,
                        'subject': c.request.subject,
                        'duration': format_hours(c.duration),
                        'kind': c.kind_string,
                        'posting': c.kind == 'posting',
                        } for c in sorted(
                        credit.consumptions, key=lambda c: (c.date, c.id))],
                })
        return values


class PartyStatement(CreditStatement):
    "The statement of a client's current credits, or of its last one"
    __name__ = 'forfait.party.statement'

    @classmethod
    def client(cls, record):
        return record

    @classmethod
    def credits(cls, records, data):
        pool = Pool()
        Credit = pool.get('forfait.credit')
        today = pool.get('ir.date').today()
        credits = []
        for party in records:
            party_credits = Credit.search(
                [('party', '=', party.id)],
                order=[('end_date', 'DESC'), ('id', 'DESC')])
            current = [
                c for c in party_credits
                if c.start_date <= today <= c.end_date]
            credits.extend(current or party_credits[:1])
        return credits
