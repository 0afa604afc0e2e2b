"""Pure ledger arithmetic: rounding billed time, allocating it to credits
and computing contract years.

Nothing here touches the database so the rules can be tested in isolation.
"""
import datetime

from dateutil.relativedelta import relativedelta

ZERO = datetime.timedelta()
ROUNDING_UNITS = ['1', '5', '10', '15', '30', '60']
ROUNDING_METHODS = ['up', 'nearest', 'down']


def round_duration(spent, unit, method='up', minimum=ZERO):
    "Return the billed duration for a request's total billable time"
    if spent <= ZERO:
        return ZERO
    unit = datetime.timedelta(minutes=int(unit))
    quotient, rest = divmod(spent, unit)
    if rest and (method == 'up' or (method == 'nearest' and rest * 2 >= unit)):
        quotient += 1
    return max(unit * quotient, minimum or ZERO)


def allocate(duration, balances):
    """Split duration over balances and return (key, part) pairs

    balances is a sequence of (key, remaining) already in consumption order.
    What they cannot cover is returned with None as key (the overdraft).
    """
    allocations = []
    for key, remaining in balances:
        if duration <= ZERO:
            break
        if remaining <= ZERO:
            continue
        part = min(duration, remaining)
        allocations.append((key, part))
        duration -= part
    if duration > ZERO:
        allocations.append((None, duration))
    return allocations


def year_end(start):
    "Return the last day of the contract year starting on start"
    next_start = start + relativedelta(years=1)
    if (start.month, start.day) == (2, 29):
        next_start = datetime.date(next_start.year, 3, 1)
    return next_start - datetime.timedelta(days=1)


def format_duration(duration):
    "Format a duration as h:mm, with a sign when negative"
    sign = '-' if duration < ZERO else ''
    minutes = int(abs(duration).total_seconds()) // 60
    return '%s%d:%02d' % (sign, minutes // 60, minutes % 60)


def format_hours(duration):
    """Format a duration as clients write it: "12 h", "1 h 15", "0 h 45",
    "-2 h"; the minutes are truncated toward zero, as format_duration does

    The same in every language: the hour sign and two-digit minutes read
    alike in French and English."""
    minutes = int(abs(duration).total_seconds()) // 60
    sign = '-' if duration < ZERO and minutes else ''
    hours, minutes = divmod(minutes, 60)
    if minutes:
        return '%s%d h %02d' % (sign, hours, minutes)
    return '%s%d h' % (sign, hours)
