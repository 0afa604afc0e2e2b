"An overdraft is carried once, whatever how many credits arrive together"
import datetime as dt
import threading
import unittest

from trytond import backend
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction

from . import test_ledger_db
from .database import DatabaseTestCase

HOUR = dt.timedelta(hours=1)
ZERO = dt.timedelta()


def overdraw(party, employee, duration):
    "Close a request of party with duration logged: an overdraft"
    pool = Pool()
    Request = pool.get('forfait.request')
    Line = pool.get('timesheet.line')
    request, = Request.create([{'party': party.id, 'subject': "Menu"}])
    Request.open([request])
    # a line holds at most a day (the configuration's maximum per line)
    parts = []
    while duration > ZERO:
        parts.append(min(duration, 24 * HOUR))
        duration -= parts[-1]
    Line.create([{
                'forfait_request': request.id, 'employee': employee.id,
                'duration': part} for part in parts])
    Request.done([request])
    return request


def subscribe(party, start, forfaits):
    "Run one subscription of party with a line per forfait"
    pool = Pool()
    Subscription = pool.get('sale.subscription')
    ModelData = pool.get('ir.model.data')
    Service = pool.get('sale.subscription.service')
    RuleSet = pool.get('sale.subscription.recurrence.rule.set')
    lines = []
    for forfait in forfaits:
        service = Service(ModelData.get_id(
                'webservice_forfait', 'service_forfait_%s' % forfait))
        lines.append({
                'service': service, 'quantity': 1, 'start_date': start,
                'unit': service.product.default_uom})
    subscription = Subscription(
        party=party, start_date=start, lines=lines,
        invoice_recurrence=RuleSet(ModelData.get_id(
                'webservice_forfait', 'recurrence_yearly')))
    subscription.on_change_party()
    subscription.save()
    Subscription.quote([subscription])
    Subscription.run([subscription])
    return subscription


def ledger(party):
    "Return the uncovered time, the time carried and the credits' remaining"
    pool = Pool()
    Consumption = pool.get('forfait.consumption')
    Credit = pool.get('forfait.credit')
    consumptions = Consumption.search([('party', '=', party.id)])
    uncovered = sum(
        (c.duration for c in consumptions if not c.credit), ZERO)
    carried = sum(
        (c.duration for c in consumptions
            if c.kind == 'carry' and c.credit), ZERO)
    credits = Credit.search([('party', '=', party.id)])
    return uncovered, carried, sorted(c.remaining for c in credits)


class CarryTestCase(DatabaseTestCase):
    "Credits created together share the overdraft instead of each taking it"

    @with_transaction()
    def test_two_lines_one_subscription(self):
        "A 1 h and a 2 h line: the 1:00 overdraft is carried once"
        pool = Pool()
        Party = pool.get('party.party')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Boulangerie Chez Lucette")
            party.save()
            overdraw(party, employee, HOUR)
            self.assertEqual(party.forfait_remaining, -HOUR)

            subscribe(party, today, ['1h', '2h'])
            uncovered, carried, remaining = ledger(party)
            self.assertEqual(uncovered, ZERO)
            self.assertEqual(carried, HOUR)
            # the credit ending first takes it (same end: the first made)
            self.assertEqual(remaining, [11 * HOUR, 24 * HOUR])
            party = Party(party.id)
            self.assertEqual(party.forfait_remaining, 35 * HOUR)
            self.assertEqual(party.forfait_overdraft, ZERO)

    @with_transaction()
    def test_overdraft_larger_than_first_credit(self):
        "What the first credit cannot hold goes to the next one"
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Hôtel Bakoua")
            party.save()
            overdraw(party, employee, 3 * HOUR)
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': hours, 'reason': "Geste",
                        'start_date': today,
                        'end_date': today + dt.timedelta(days=days)}
                    for hours, days in [(2 * HOUR, 30), (5 * HOUR, 60)]])
            uncovered, carried, remaining = ledger(party)
            self.assertEqual(uncovered, ZERO)
            self.assertEqual(carried, 3 * HOUR)
            self.assertEqual(remaining, [ZERO, 4 * HOUR])

    @with_transaction()
    def test_renewal_of_two_subscriptions(self):
        "Two subscriptions of one client renewed by the cron on one day"
        pool = Pool()
        Party = pool.get('party.party')
        Subscription = pool.get('sale.subscription')
        Credit = pool.get('forfait.credit')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Madinina Kayak")
            party.save()
            start = today - dt.timedelta(days=364)
            subscribe(party, start, ['1h'])
            subscribe(party, start, ['2h'])
            # both credits used up, and 1:30 more
            overdraw(party, employee, 36 * HOUR + 90 * HOUR / 60)
            self.assertEqual(party.forfait_remaining, -90 * HOUR / 60)

            anniversary = today + dt.timedelta(days=1)
            Subscription.renew_forfait_credits(date=anniversary)
            new = Credit.search([
                    ('party', '=', party.id),
                    ('start_date', '=', anniversary)])
            self.assertEqual(len(new), 2)
            uncovered, carried, _ = ledger(party)
            self.assertEqual(uncovered, ZERO)
            self.assertEqual(carried, 90 * HOUR / 60)
            self.assertEqual(
                sum((c.remaining for c in new), ZERO),
                36 * HOUR - 90 * HOUR / 60)
            balance = Party.forfait_balances(
                [party.id], ['forfait_remaining'], date=anniversary)
            self.assertEqual(
                balance['forfait_remaining'][party.id],
                36 * HOUR - 90 * HOUR / 60)


@unittest.skipUnless(
    backend.name == 'postgresql', "SQLite has no row locks")
class ConcurrentCarryTestCase(DatabaseTestCase):
    "Two transactions creating credits for one overdrawn client"

    run_in_transaction = (
        test_ledger_db.ConcurrentPostingTestCase.run_in_transaction)
    lock_waits = 0

    def test_concurrent_carries(self):
        def set_up():
            pool = Pool()
            Party = pool.get('party.party')
            company = create_company()
            with set_company(company):
                employee = create_employee(company)
                party = Party(name="Hôtel Bakoua Plage")
                party.save()
                overdraw(party, employee, 2 * HOUR)
            return company.id, party.id

        company_id, party_id = self.run_in_transaction(set_up)
        context = {'company': company_id, 'companies': [company_id]}
        errors = []
        barrier = threading.Barrier(4)

        def grant(hours):
            def create():
                pool = Pool()
                Credit = pool.get('forfait.credit')
                today = pool.get('ir.date').today()
                Credit.create([{
                            'party': party_id, 'company': company_id,
                            'hours': hours, 'reason': "Geste",
                            'start_date': today,
                            'end_date': today + dt.timedelta(days=364)}])
            try:
                barrier.wait()
                self.run_in_transaction(create, context=context)
            except Exception as exception:
                errors.append(exception)

        threads = [
            threading.Thread(target=grant, args=(h * HOUR,))
            for h in [3, 5, 7, 11]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])

        def check():
            Party = Pool().get('party.party')
            party = Party(party_id)
            uncovered, carried, remaining = ledger(party)
            self.assertEqual(uncovered, ZERO)
            self.assertEqual(carried, 2 * HOUR)
            self.assertEqual(len(remaining), 4)
            self.assertEqual(sum(remaining, ZERO), 24 * HOUR)
            self.assertEqual(party.forfait_remaining, 24 * HOUR)
        self.run_in_transaction(check, context=context)
