"""Data generator: a realistic agency on PostgreSQL at three sizes.

small: 50 clients, 2,000 timesheet lines; large: 5,000 clients, 500,000
lines; huge: 20,000 clients, 2,000,000 lines.  Each client has a party with
an address and an e-mail, manual credits over three contract years (some
churned or new clients, some in overdraft, some credits exhausted), update
requests in every state with their timesheet work and lines, and the
consumptions that marking the done ones done would have posted: oldest
credit first, what no credit covers as an overdraft (credit NULL), carried
onto the next credit when it is created (the ``carry`` policy).

The module is activated once in a template database (keyed by the module's
schema) and each size is a copy of it.  The rows are written with COPY; the
ledger (allocation, rounding, carries, credit states) is computed with the
module's own functions in ledger.py, client by client in date order, as the
ORM would.  ``--orm`` builds the same plan through the ORM instead (slow,
for checking: ``--check`` compares both on the small size).

The history is imported, not replayed: no alert, update report nor e-mail
is produced for it.

Usage: python bench/generate.py --size small|large|huge [--name DB]
    [--seed N] [--orm] [--check] [--uri postgresql://...]

The demo can reuse ``generate(database_name, clients, lines, seed)``.
"""
import argparse
import datetime as dt
import glob
import hashlib
import os
import random
import sys
import time
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, '..', 'webservice_forfait')
sys.path.insert(0, HERE)

from common import (  # noqa: E402
    BENCHMARKS, machine, use_postgresql, write_section)

SIZES = {
    'small': (50, 2_000),
    'large': (5_000, 500_000),
    'huge': (20_000, 2_000_000),
    }
PRIORITIES = ['low', 'normal', 'high', 'urgent']
PRIORITY_WEIGHTS = [10, 75, 12, 3]
DEFAULT_URI = 'postgresql://postgres@127.0.0.1:5432/'
TIMEZONE = 'America/Martinique'
ADMIN = 1
ZERO = dt.timedelta()
MINUTE = dt.timedelta(minutes=1)
EMPLOYEES = [
    "Marie-Line Joseph", "Steeve Charlery", "Nadège Éloi",
    "Rudy Jean-Baptiste", "Karine Bellay", "Loïc Marie-Sainte"]
CITIES = [
    ('97200', "Fort-de-France"), ('97233', "Schœlcher"),
    ('97232', "Le Lamentin"), ('97229', "Les Trois-Îlets"),
    ('97250', "Saint-Pierre"), ('97290', "Le Marin"),
    ('97110', "Pointe-à-Pitre"), ('97190', "Le Gosier")]
TRADES = [
    "Boulangerie", "Hôtel", "Restaurant", "Garage", "Cabinet", "Pharmacie",
    "Librairie", "Location de voitures", "Plongée", "Distillerie", "Gîte",
    "Salon de coiffure", "Agence immobilière", "Traiteur", "Fleuriste"]
CATEGORIES = [
    'layout', 'content', 'illustrations', 'animations', 'features',
    'information', 'newsletter', 'other']
WORDS = [
    "page d'accueil", "menu du jour", "tarifs", "horaires", "photos",
    "bandeau", "formulaire de contact", "mentions légales", "galerie",
    "actualités", "plan d'accès", "carte des vins", "promotions"]


def company_today():
    "Today where the agency works"
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


def schema_key():
    "Hash of the module's code and data: a template per schema"
    digest = hashlib.md5()
    for path in sorted(
            glob.glob(os.path.join(MODULE, '*.py'))
            + glob.glob(os.path.join(MODULE, '*.xml'))
            + [os.path.join(MODULE, 'tryton.cfg')]):
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:10]


def template_name():
    "BENCH_TEMPLATE names a template to reuse whatever the schema key"
    return os.environ.get('BENCH_TEMPLATE') or 'bench_tpl_%s' % schema_key()


# --- PostgreSQL -------------------------------------------------------------

def connect(name, autocommit=False):
    import psycopg
    return psycopg.connect(
        os.environ['TRYTOND_DATABASE__URI'] + name, autocommit=autocommit)


def databases():
    with connect('postgres', autocommit=True) as conn:
        return {r[0] for r in conn.execute('SELECT datname FROM pg_database')}


def close_pool(name):
    "Close trytond's connections to name so it can be a template or dropped"
    from trytond import backend
    from trytond.pool import Pool
    backend.Database(name).close()
    Pool.stop(name)


def drop_database(name):
    close_pool(name)
    with connect('postgres', autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def copy_database(template, name):
    drop_database(name)
    close_pool(template)
    with connect('postgres', autocommit=True) as conn:
        conn.execute(
            'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))


# --- Template ---------------------------------------------------------------

def build_template(name):
    """Create name with the module activated, a company, its staff and the
    admin user working for it"""
    from trytond.modules.company.tests import create_company, create_employee
    from trytond.modules.currency.tests import create_currency
    from trytond.pool import Pool
    from trytond.tests.test_tryton import create_db
    from trytond.transaction import Transaction

    drop_database(name)
    create_db(name)
    with Transaction().start(name, 0, close=True) as transaction:
        pool = Pool()
        Module = pool.get('ir.module')
        Module.activate(Module.search([('name', '=', 'webservice_forfait')]))
        transaction.commit()
        ActivateUpgrade = pool.get(
            'ir.module.activate_upgrade', type='wizard')
        instance_id, _, _ = ActivateUpgrade.create()
        transaction.commit()
        ActivateUpgrade(instance_id).transition_upgrade()
        ActivateUpgrade.delete(instance_id)
        transaction.commit()
    with Transaction().start(name, 0, close=True) as transaction:
        pool = Pool()
        User = pool.get('res.user')
        company = create_company(
            "Webservice Caraïbes", currency=create_currency('EUR'))
        company.timezone = TIMEZONE
        company.save()
        employees = [create_employee(company, n) for n in EMPLOYEES]
        admin = User(ADMIN)
        User.write([admin], {
                'companies': [('add', [company.id])],
                'company': company.id,
                'employees': [('add', [e.id for e in employees])],
                'employee': employees[0].id,
                })
        transaction.commit()
    close_pool(name)


def ensure_template():
    name = template_name()
    if name not in databases():
        for old in databases():
            if old.startswith('bench_tpl_') and old != name:
                drop_database(old)
        start = time.perf_counter()
        build_template(name)
        print("template %s built in %.0f s" % (
                name, time.perf_counter() - start), flush=True)
    return name


# --- Plan -------------------------------------------------------------------

def party_lines(index, clients, lines, seed):
    "Lines of client index: the average, varied by pairs, summing to lines"
    base, extra = divmod(lines, clients)
    count = base + (1 if index < extra else 0)
    pair = index // 2
    if 2 * pair + 1 < clients:
        delta = random.Random('%s-pair-%s' % (seed, pair)).randint(
            0, base // 2)
        count += delta if index % 2 == 0 else -delta
    return count


def plan_party(index, clients, lines, seed, today):
    """Return the plan of client index: its credits and requests with their
    lines, all in date order; deterministic by (seed, index)"""
    from webservice_forfait.ledger import year_end
    rng = random.Random('%s-%s' % (seed, index))
    postal_code, city = rng.choice(CITIES)
    name = "%s %s" % (rng.choice(TRADES), "Client %05d" % index)
    email = 'client%05d@example.mq' % index
    hours = dt.timedelta(hours=12 * rng.choices([1, 2, 3], [5, 3, 2])[0])
    offset = rng.randint(3, 360)
    starts = [today - dt.timedelta(days=3 * 365 - offset)]
    for _ in range(2):
        starts.append(year_end(starts[-1]) + dt.timedelta(days=1))
    profile = rng.random()
    if profile < 0.08:      # churned: no credit this year
        credited, active = [0, 1], {0: 1, 1: 1, 2: 0.05}
    elif profile < 0.16:    # new client
        credited, active = [2], {2: 1}
    else:
        credited, active = [0, 1, 2], {0: 1, 1: 1, 2: 1}
    credits = [(starts[y], year_end(starts[y]), hours) for y in credited]

    count = party_lines(index, clients, lines, seed)
    weights = sum(active.values())
    requests = []
    remaining = count
    years = sorted(active)
    for y in years:
        n = (remaining if y == years[-1]
            else round(count * active[y] / weights))
        remaining -= n
        if n <= 0:
            continue
        start = starts[y]
        end = min(year_end(start), today)
        intensity = rng.choices(
            [rng.uniform(0.3, 0.9), rng.uniform(0.9, 1.1),
                rng.uniform(1.1, 1.6)], [7, 2, 1])[0]
        average = hours * intensity / n
        sizes = []
        while sum(sizes) < n:
            sizes.append(min(rng.randint(1, 6), n - sum(sizes)))
        span = (end - start).days
        dates = sorted(
            start + dt.timedelta(days=rng.randint(0, span))
            for _ in sizes)
        for size, date in zip(sizes, dates):
            word = rng.choice(WORDS)
            request_lines = []
            for _ in range(size):
                minutes = average * rng.uniform(0.5, 1.5) / MINUTE
                request_lines.append((
                        min(date + dt.timedelta(days=rng.randint(0, 3)),
                            today),
                        max(5, int(round(minutes / 5)) * 5) * MINUTE,
                        rng.random() < 0.9,
                        rng.randrange(len(EMPLOYEES)),
                        "Modification : %s" % word))
            done_date = max(l[0] for l in request_lines)
            if (today - date).days <= 3 and rng.random() < 0.3:
                state = 'draft'
            elif (today - done_date).days < 20:
                state = 'open'
            elif rng.random() < 0.02:
                state = 'cancelled'
            else:
                state = 'done'
            requests.append(request(
                    rng, index, email, date, word, state, request_lines,
                    done_date if state == 'done' else None))
        # a request cancelled before any work, now and then
        if rng.random() < 0.3:
            requests.append(request(
                    rng, index, email,
                    start + dt.timedelta(days=rng.randint(0, span)),
                    rng.choice(WORDS), 'cancelled', [], None))
    if rng.random() < 0.1:
        requests.append(request(
                rng, index, email, today - dt.timedelta(days=1),
                rng.choice(WORDS), 'draft', [], None))
    requests.sort(key=lambda r: r['request_date'])
    return {
        'index': index, 'name': name, 'email': email,
        'postal_code': postal_code, 'city': city,
        'credits': credits, 'requests': requests}


def request(rng, index, email, date, word, state, lines, done_date):
    channel = 'email' if rng.random() < 0.6 else 'staff'
    return {
        'subject': "Mise à jour : %s" % word,
        'description': "Bonjour, merci de mettre à jour : %s." % word,
        'category': rng.choice(CATEGORIES),
        'channel': channel,
        'email_sender': email if channel == 'email' else None,
        'email_message_id': (
            '<%s.%s@example.mq>' % (index, rng.getrandbits(48))
            if channel == 'email' else None),
        'request_date': date,
        'state': state,
        'priority': rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
        'lines': lines,
        'done_date': done_date,
        }


def waiting(plan, available):
    "Whether client plan has a request waiting for hours today"
    return available <= ZERO and plan['index'] % 2 == 0


# --- Ledger -----------------------------------------------------------------

def simulate(plan, today, round_):
    """Post plan's done requests and carry its overdrafts as the module
    does; return the credits' consumptions and states, the consumptions
    in creation order and the billed time of each request"""
    from webservice_forfait.ledger import allocate
    credits = [
        {'key': j, 'start': s, 'end': e, 'hours': h, 'consumed': ZERO,
            'state': 'open'}
        for j, (s, e, h) in enumerate(plan['credits'])]
    events = [(c['start'], 0, c['key']) for c in credits]
    billed = {}
    for k, r in enumerate(plan['requests']):
        if r['state'] == 'done':
            billed[k] = round_(sum(
                    (d for _, d, b, _, _ in r['lines'] if b), ZERO))
            events.append((r['done_date'], 2, k))
    consumptions = []   # (request key, credit key, date, duration, kind)
    uncovered = {}      # request key: overdraft not carried, in order
    for date, kind, key in sorted(events):
        if kind == 0:
            credit = credits[key]
            left = credit['hours']
            for request_key, overdraft in list(uncovered.items()):
                part = min(overdraft, left)
                if part <= ZERO:
                    continue
                left -= part
                consumptions.append((request_key, None, date, -part, 'carry'))
                consumptions.append((request_key, key, date, part, 'carry'))
                uncovered[request_key] -= part
                credit['consumed'] += part
            update_state([credit], date)
        else:
            usable = sorted(
                (c for c in credits if c['state'] == 'open'
                    and c['start'] <= date <= c['end']),
                key=lambda c: (c['end'], c['start'], c['key']))
            for credit, part in allocate(
                    billed[key],
                    [(c, c['hours'] - c['consumed']) for c in usable]):
                consumptions.append((
                        key, credit['key'] if credit else None, date, part,
                        'posting'))
                if credit:
                    credit['consumed'] += part
                else:
                    uncovered[key] = uncovered.get(key, ZERO) + part
            update_state(usable, date)
    update_state(credits, today, expire=True)
    return credits, consumptions, billed


def update_state(credits, date, expire=False):
    for credit in credits:
        if credit['end'] < date:
            if expire:
                credit['state'] = 'expired'
        elif credit['consumed'] >= credit['hours']:
            credit['state'] = 'exhausted'
        else:
            credit['state'] = 'open'


def balance(plan, credits, consumptions, today, round_):
    "Return remaining and pending of plan, as the party's fields define them"
    current = {
        c['key'] for c in credits
        if c['start'] <= today <= c['end'] and c['state'] != 'expired'}
    hours = sum((c['hours'] for c in credits if c['key'] in current), ZERO)
    consumed = sum(
        (d for _, c, _, d, _ in consumptions if c is None or c in current),
        ZERO)
    pending = sum(
        (round_(sum((d for _, d, b, _, _ in r['lines'] if b), ZERO))
            for r in plan['requests'] if r['state'] == 'open'), ZERO)
    return hours - consumed, pending


# --- Loading ----------------------------------------------------------------

class Ids:
    "Blocks of ids reserved from the tables' sequences"

    def __init__(self, cursor):
        self.cursor = cursor

    def reserve(self, table, count):
        if not count:
            return iter(())
        sequence = '%s_id_seq' % table
        first, = self.cursor.execute(
            "SELECT nextval(%s)", (sequence,)).fetchone()
        self.cursor.execute(
            "SELECT setval(%s, %s)", (sequence, first + count - 1))
        return iter(range(first, first + count))


def sequence_block(cursor, sequence_id, count):
    "Reserve count numbers of the ir.sequence and return the first"
    name = 'ir_sequence_%s' % sequence_id
    first, = cursor.execute("SELECT nextval(%s)", (name,)).fetchone()
    cursor.execute("SELECT setval(%s, %s)", (name, first + count - 1))
    return first


def copy(cursor, table, columns, rows):
    with cursor.copy('COPY %s (%s) FROM STDIN' % (
                table, ', '.join(columns))) as copy_:
        for row in rows:
            copy_.write_row(row)


def context(name):
    "The company, staff, sequences and rounding of database name"
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool(name).init()
    with Transaction().start(name, ADMIN):
        pool = Pool()
        Employee = pool.get('company.employee')
        Config = pool.get('forfait.configuration')
        PartyConfig = pool.get('party.configuration')
        from trytond.i18n import gettext
        config = Config(1)
        result = {
            'company': pool.get('res.user')(ADMIN).company.id,
            'employees': [e.id for e in Employee.search(
                    [], order=[('id', 'ASC')])],
            'request_sequence': config.request_sequence,
            'party_sequence': PartyConfig(1).party_sequence.id,
            'rounding': (
                config.rounding_unit, config.rounding_method,
                config.rounding_minimum),
            'carry_reason': gettext('webservice_forfait.msg_carry_reason'),
            }
        prefix = config.request_sequence.prefix
        result['request_prefix'] = prefix
        result['request_padding'] = config.request_sequence.padding
        result['request_sequence'] = config.request_sequence.id
    return result


def rounder(ctx):
    from webservice_forfait.ledger import round_duration
    unit, method, minimum = ctx['rounding']
    return lambda spent: round_duration(spent, unit, method, minimum)


def load_bulk(name, clients, lines, seed, today, chunk=500):
    "Write the plan of clients into database name with COPY"
    load_plans(name, [
            [(i, clients, lines) for i in range(
                    first, min(first + chunk, clients))]
            for first in range(0, clients, chunk)], seed, today)


def add_client(name, index, lines, seed, today=None):
    """Add to database name client index alone with lines timesheet lines
    (a client with a long history)"""
    load_plans(name, [[(index, 1, lines)]], seed, today or company_today())


def load_plans(name, batches, seed, today):
    """Write with COPY the clients of batches, lists of (index, clients,
    lines) for plan_party"""
    ctx = context(name)
    round_ = rounder(ctx)
    company, employees = ctx['company'], ctx['employees']
    now = dt.datetime.now()
    stamp = (now, ADMIN)
    with connect(name) as conn:
        cursor = conn.cursor()
        ids = Ids(cursor)
        codes = sequence_block(
            cursor, ctx['party_sequence'], sum(map(len, batches)))
        for batch in batches:
            plans = [
                plan_party(index, clients, lines, seed, today)
                for index, clients, lines in batch]
            parties, addresses, mechanisms = [], [], []
            credit_rows, request_rows, work_rows, line_rows = [], [], [], []
            consumption_rows = []
            party_ids = ids.reserve('party_party', len(plans))
            address_ids = ids.reserve('party_address', len(plans))
            mechanism_ids = ids.reserve('party_contact_mechanism', len(plans))
            credit_ids = ids.reserve(
                'forfait_credit', sum(len(p['credits']) for p in plans))
            n_requests = sum(len(p['requests']) + 1 for p in plans)
            request_ids = ids.reserve('forfait_request', n_requests)
            work_ids = ids.reserve('timesheet_work', n_requests)
            results = []
            for plan in plans:
                credits, consumptions, billed = simulate(plan, today, round_)
                remaining, pending = balance(
                    plan, credits, consumptions, today, round_)
                if waiting(plan, remaining - pending):
                    plan['requests'].append(request(
                            random.Random(plan['index']), plan['index'],
                            plan['email'], today, WORDS[0], 'waiting', [],
                            None))
                results.append((plan, credits, consumptions, billed))
            line_ids = ids.reserve('timesheet_line', sum(
                    len(r['lines']) for p in plans for r in p['requests']))
            consumption_ids = ids.reserve('forfait_consumption', sum(
                    len(r[2]) for r in results))
            for plan, credits, consumptions, billed in results:
                party = next(party_ids)
                code = str(codes)
                codes += 1
                parties.append((
                        party, True, code, code, int(code), plan['name'])
                    + stamp + stamp)
                addresses.append((
                        next(address_ids), party, True, plan['postal_code'],
                        plan['city']) + stamp)
                mechanism = next(mechanism_ids)
                mechanisms.append((
                        mechanism, party, True, 'email', plan['email'],
                        plan['email']) + stamp + stamp)
                credit_of = {}
                for credit in credits:
                    credit_of[credit['key']] = credit_id = next(credit_ids)
                    written = credit['state'] != 'open'
                    credit_rows.append((
                            credit_id, company, party, credit['start'],
                            credit['end'], credit['hours'], ZERO,
                            "Reprise de l'historique", credit['state'])
                        + stamp + ((now, ADMIN) if written else (None, None)))
                request_of = {}
                for k, r in enumerate(plan['requests']):
                    request_of[k] = request_id = next(request_ids)
                    work_id = next(work_ids)
                    work_rows.append((
                            work_id, company,
                            'forfait.request,%s' % request_id) + stamp)
                    request_rows.append((
                            request_id, company, party, mechanism,
                            r['subject'], r['description'], r['category'],
                            r['channel'], r['request_date'], r['done_date'],
                            work_id, billed.get(k), r['email_sender'],
                            r['email_message_id'], r['state'],
                            r['priority'])
                        + stamp + stamp)
                    for date, duration, billable, employee, text in r[
                            'lines']:
                        line_rows.append((
                                next(line_ids), company,
                                employees[employee], date, duration, work_id,
                                text, billable, request_id) + stamp)
                for request_key, credit_key, date, duration, kind in (
                        consumptions):
                    consumption_rows.append((
                            next(consumption_ids), company, party,
                            request_of[request_key],
                            credit_of.get(credit_key), date, duration, kind,
                            ctx['carry_reason'] if kind == 'carry' else None)
                        + stamp)
            create = ('create_date', 'create_uid')
            write = ('write_date', 'write_uid')
            copy(cursor, 'party_party', (
                    'id', 'active', 'code', 'code_alnum', 'code_digit',
                    'name') + create + write, parties)
            copy(cursor, 'party_address', (
                    'id', 'party', 'active', 'postal_code', 'city') + create,
                addresses)
            copy(cursor, 'party_contact_mechanism', (
                    'id', 'party', 'active', 'type', 'value',
                    'value_compact') + create + write, mechanisms)
            copy(cursor, 'forfait_credit', (
                    'id', 'company', 'party', 'start_date', 'end_date',
                    'hours', 'carried_over', 'reason', 'state')
                + create + write, credit_rows)
            copy(cursor, 'timesheet_work', (
                    'id', 'company', 'origin') + create, work_rows)
            copy(cursor, 'forfait_request', (
                    'id', 'company', 'party', 'contact', 'subject',
                    'description', 'category', 'channel', 'request_date',
                    'done_date', 'timesheet_work', 'billed', 'email_sender',
                    'email_message_id', 'state', 'priority') + create + write,
                request_rows)
            copy(cursor, 'timesheet_line', (
                    'id', 'company', 'employee', 'date', 'duration', 'work',
                    'description', 'billable', 'forfait_request') + create,
                line_rows)
            copy(cursor, 'forfait_consumption', (
                    'id', 'company', 'party', 'request', 'credit', 'date',
                    'duration', 'kind', 'reason') + create,
                consumption_rows)
        number_requests(cursor, ctx)
        conn.commit()
    with connect(name, autocommit=True) as conn:
        conn.execute('VACUUM ANALYZE')


def number_requests(cursor, ctx):
    """Number the requests in the order the ORM creates them: by request
    date, the waiting ones of today last, client by client"""
    count, = cursor.execute(
        "SELECT count(*) FROM forfait_request WHERE number IS NULL"
        ).fetchone()
    if not count:
        return
    first = sequence_block(cursor, ctx['request_sequence'], count)
    prefix = ctx['request_prefix'] or ''
    year = "' || to_char(o.request_date, 'YYYY') || '"
    for key in ['${year}', '${date_Y}']:
        prefix = prefix.replace(key, year)
    assert '$' not in prefix, prefix
    padding = int(ctx['request_padding'] or 0)
    cursor.execute(
        "WITH o AS (SELECT id, request_date, %s - 1 + row_number() OVER ("
        "ORDER BY request_date, state = 'waiting', party, id) AS n "
        "FROM forfait_request WHERE number IS NULL) "
        "UPDATE forfait_request AS r SET number = '" + prefix + "' || "
        "CASE WHEN length(o.n::text) >= %s THEN o.n::text "
        "ELSE lpad(o.n::text, %s, '0') END "
        "FROM o WHERE r.id = o.id", (first, padding, padding))


def load_orm(name, clients, lines, seed, today):
    """Build the same plan through the ORM, replaying its history day by
    day with ir.date's today moved to each day (slow: for checking)"""
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    ctx = context(name)
    plans = [
        plan_party(i, clients, lines, seed, today) for i in range(clients)]
    company = {'company': ctx['company'], 'companies': [ctx['company']],
        'employee': ctx['employees'][0]}
    with Transaction().start(name, ADMIN, context=company) as transaction:
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        Date = pool.get('ir.date')
        Config = pool.get('forfait.configuration')
        config = Config(1)
        saved = config.alert_thresholds, config.notify_report
        config.alert_thresholds, config.notify_report = '', False
        config.save()
        day = [today]
        real_today = Date.today
        Date.today = staticmethod(lambda timezone=None: day[0])
        try:
            parties = Party.create([{
                        'name': p['name'],
                        'addresses': [('create', [{
                                        'postal_code': p['postal_code'],
                                        'city': p['city']}])],
                        'contact_mechanisms': [('create', [{
                                        'type': 'email',
                                        'value': p['email']}])],
                        } for p in plans])
            events = []
            for plan, party in zip(plans, parties):
                for start, end, hours in plan['credits']:
                    events.append((start, 0, plan['index'], 0, {
                                'party': party.id,
                                'company': ctx['company'],
                                'start_date': start, 'end_date': end,
                                'hours': hours,
                                'reason': "Reprise de l'historique"}))
                for k, r in enumerate(plan['requests']):
                    events.append((r['request_date'], 1, plan['index'], k, r))
                    if r['state'] == 'done':
                        events.append(
                            (r['done_date'], 2, plan['index'], k, r))
            created = {}
            for date, kind, index, k, value in sorted(
                    events, key=lambda e: e[:4]):
                day[0] = date
                party = parties[index]
                if kind == 0:
                    Credit.create([value])
                elif kind == 1:
                    created[index, k] = create_request(
                        ctx, party, value)
                else:
                    Request.done([created[index, k]])
            day[0] = today
            Credit.expire(today)
            for plan, party in zip(plans, parties):
                party = Party(party.id)
                if waiting(plan, party.forfait_available):
                    r = request(
                        random.Random(plan['index']), plan['index'],
                        plan['email'], today, WORDS[0], 'waiting', [], None)
                    create_request(ctx, party, r)
        finally:
            Date.today = real_today
        config.alert_thresholds, config.notify_report = saved
        config.save()
        transaction.commit()


def create_request(ctx, party, r):
    from trytond.pool import Pool
    pool = Pool()
    Request = pool.get('forfait.request')
    Line = pool.get('timesheet.line')
    request_, = Request.create([{
                'party': party.id, 'company': ctx['company'],
                'contact': party.contact_mechanisms[0].id,
                'subject': r['subject'], 'description': r['description'],
                'category': r['category'], 'channel': r['channel'],
                'request_date': r['request_date'],
                'priority': r['priority'],
                'email_sender': r['email_sender'],
                'email_message_id': r['email_message_id']}])
    if r['state'] in {'open', 'done', 'cancelled'} and r['lines']:
        Request.open([request_])
    if r['lines']:
        Line.create([{
                    'forfait_request': request_.id,
                    'company': ctx['company'], 'date': date,
                    'duration': duration, 'billable': billable,
                    'employee': ctx['employees'][employee],
                    'description': text}
                for date, duration, billable, employee, text in r['lines']])
    if r['state'] == 'cancelled':
        Request.cancel([request_])
    elif r['state'] == 'waiting':
        # arises under the 'block' policy
        Request.wait([request_])
    return request_


# --- Checking ---------------------------------------------------------------

PROJECTIONS = {
    'party': (
        "SELECT p.code, p.name, p.active, a.postal_code, a.city, a.active, "
        "m.type, m.value, m.value_compact, m.active "
        "FROM party_party p JOIN party_address a ON a.party = p.id "
        "JOIN party_contact_mechanism m ON m.party = p.id "
        "WHERE p.id NOT IN (SELECT party FROM company_company "
        "UNION SELECT party FROM company_employee) ORDER BY p.code"),
    'credit': (
        "SELECT p.code, c.start_date, c.end_date, c.hours, c.carried_over, "
        "c.state, c.reason, c.origin, c.carried_from, c.company "
        "FROM forfait_credit c JOIN party_party p ON p.id = c.party "
        "ORDER BY p.code, c.start_date"),
    'request': (
        "SELECT r.number, p.code, m.value, r.subject, r.description, "
        "r.category, r.channel, r.request_date, r.done_date, r.billed, "
        "r.email_sender, r.email_message_id, r.state, w.origin = "
        "'forfait.request,' || r.id, w.company, w.name, r.company "
        "FROM forfait_request r JOIN party_party p ON p.id = r.party "
        "LEFT JOIN party_contact_mechanism m ON m.id = r.contact "
        "JOIN timesheet_work w ON w.id = r.timesheet_work ORDER BY r.number"),
    'line': (
        "SELECT r.number, l.date, l.duration, l.billable, l.description, "
        "l.employee, l.company, l.uuid, l.work = r.timesheet_work "
        "FROM timesheet_line l JOIN forfait_request r "
        "ON r.id = l.forfait_request "
        "ORDER BY r.number, l.date, l.duration, l.description, l.employee, "
        "l.billable"),
    'consumption': (
        "SELECT p.code, r.number, c.start_date, k.date, k.duration, k.kind, "
        "k.reason, k.invoice_line, k.company "
        "FROM forfait_consumption k JOIN party_party p ON p.id = k.party "
        "JOIN forfait_request r ON r.id = k.request "
        "LEFT JOIN forfait_credit c ON c.id = k.credit "
        "ORDER BY p.code, k.id"),
    }
TABLES = [
    'party_party', 'party_address', 'party_contact_mechanism',
    'forfait_credit', 'forfait_request', 'timesheet_work', 'timesheet_line',
    'forfait_consumption']


def null_counts(cursor, table):
    "Which columns are filled, row count aside: catches forgotten columns"
    columns = [r[0] for r in cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY column_name", (table,))]
    counts = cursor.execute('SELECT %s FROM "%s"' % (
            ', '.join('count("%s")' % c for c in columns), table)).fetchone()
    return dict(zip(columns, counts))


def compare(bulk, orm):
    "Return the differences between the databases built both ways"
    differences = []
    with connect(bulk) as a, connect(orm) as b:
        for name, query in PROJECTIONS.items():
            rows_a = a.execute(query).fetchall()
            rows_b = b.execute(query).fetchall()
            if rows_a != rows_b:
                diff = [
                    (x, y) for x, y in zip(rows_a, rows_b) if x != y][:3]
                differences.append((name, len(rows_a), len(rows_b), diff))
        for table in TABLES:
            counts_a = null_counts(a.cursor(), table)
            counts_b = null_counts(b.cursor(), table)
            if counts_a != counts_b:
                differences.append((table, {
                            c: (counts_a[c], counts_b.get(c))
                            for c in counts_a
                            if counts_a[c] != counts_b.get(c)}))
    return differences


# --- Entry points -----------------------------------------------------------

def record(size, clients, rows, seconds):
    "Write the build time of size in BENCHMARKS.md, keeping the other sizes"
    with open(BENCHMARKS, encoding='utf-8') as f:
        section = f.read().split('<!-- generate -->')[1].split(
            '<!-- /generate -->')[0]
    lines = {
        line.split('|')[1].strip(): line for line in section.splitlines()
        if line.startswith('| ') and line.split('|')[1].strip() in SIZES}
    lines[size] = '| %s | %s | %s | %s | %s | %s | %s |' % (
        size, f"{clients:,}", f"{rows['timesheet_line']:,}",
        f"{rows['forfait_request']:,}", f"{rows['forfait_consumption']:,}",
        f"{rows['forfait_credit']:,}",
        dt.timedelta(seconds=round(seconds)))
    write_section('generate', '\n'.join([
                machine().replace('with `make bench`', 'with `make bench` '
                    '(last size built; template database aside)'),
                "",
                "| size | clients | timesheet lines | requests "
                "| consumptions | credits | build time |",
                "|---|---|---|---|---|---|---|",
                *[lines[s] for s in SIZES if s in lines]]))


def generate(database_name, clients, lines, seed=1, today=None, orm=False):
    """Create database_name from the template and fill it with clients and
    about lines timesheet lines; return the seconds it took (the template
    aside)"""
    today = today or company_today()
    template = ensure_template()
    start = time.perf_counter()
    copy_database(template, database_name)
    if orm:
        load_orm(database_name, clients, lines, seed, today)
    else:
        load_bulk(database_name, clients, lines, seed, today)
    close_pool(database_name)
    return time.perf_counter() - start


def ensure(size):
    "Return the name of the database of size, built if missing"
    name = 'bench_%s' % size
    if name not in databases():
        clients, lines = SIZES[size]
        seconds = generate(name, clients, lines)
        record(size, clients, counts(name), seconds)
        print("%s built in %s" % (name, dt.timedelta(seconds=round(seconds))),
            flush=True)
    return name


def counts(name):
    with connect(name) as conn:
        return {t: conn.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
            for t in TABLES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=SIZES, default='small')
    parser.add_argument('--name')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--orm', action='store_true')
    parser.add_argument('--check', action='store_true',
        help="also build through the ORM and compare (small size)")
    parser.add_argument('--uri', default=DEFAULT_URI)
    args = parser.parse_args()
    # one template for the whole run, even if the module changes meanwhile
    os.environ['BENCH_TEMPLATE'] = template_name()
    use_postgresql(args.uri, template_name())
    clients, lines = SIZES[args.size]
    name = args.name or 'bench_%s' % args.size
    seconds = generate(name, clients, lines, args.seed, orm=args.orm)
    print("%s: %s clients, %s lines built in %s (%s)" % (
            name, clients, lines, dt.timedelta(seconds=round(seconds)),
            'ORM' if args.orm else 'COPY'), flush=True)
    rows = counts(name)
    print(rows)
    record(args.size, clients, rows, seconds)
    if args.check:
        orm_name = name + '_orm'
        seconds = generate(orm_name, clients, lines, args.seed, orm=True)
        print("%s built through the ORM in %s" % (
                orm_name, dt.timedelta(seconds=round(seconds))))
        differences = compare(name, orm_name)
        for difference in differences:
            print(difference)
        drop_database(orm_name)
        if differences:
            return 1
        print("Same data through COPY and through the ORM.")


if __name__ == '__main__':
    sys.exit(main())
