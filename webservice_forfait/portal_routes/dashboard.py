"""The dashboard: /"""
import datetime
import math

from ..ledger import ZERO, allocate
from ..party import client_figures, figures_as_of
from .common import portal_route, state_label
from .subscribe import renewals


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
        state_label=state_label, renewals=renewals(portal))


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
