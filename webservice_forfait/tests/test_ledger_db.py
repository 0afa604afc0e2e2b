"Ledger tests that need a database: query counts and concurrent postings"
import datetime as dt
import threading
import time
import unittest
from zoneinfo import ZoneInfo

from trytond import backend
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, with_transaction
from trytond.transaction import Transaction, TransactionError

from .database import DatabaseTestCase, count_queries

HOUR = dt.timedelta(hours=1)


def make_clients(company, employee, count, today):
    "Create count clients, each with a credit and an open and a done request"
    pool = Pool()
    Party = pool.get('party.party')
    Credit = pool.get('forfait.credit')
    Request = pool.get('forfait.request')
    Line = pool.get('timesheet.line')
    parties = Party.create([{'name': 'Client %s' % i} for i in range(count)])
    credits = Credit.create([{
                'party': p.id, 'company': company.id, 'hours': 12 * HOUR,
                'start_date': today, 'end_date': today + dt.timedelta(364),
                'reason': 'Test'} for p in parties])
    requests = Request.create([{
                'party': p.id, 'company': company.id, 'subject': 'Update',
                } for p in parties for _ in range(2)])
    Request.open(requests)
    Line.create([{
                'forfait_request': r.id, 'employee': employee.id,
                'company': company.id, 'duration': HOUR + HOUR / 6,
                } for r in requests])
    Request.done(requests[::2])
    return parties, credits


class BalanceQueryTestCase(DatabaseTestCase):
    "Balances cost the same number of queries for 1 or 200 records"

    @with_transaction()
    def test_balance_query_count(self):
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            parties, credits = make_clients(company, employee, 200, today)
            requests = Request.search([])

            counts = {}
            for size in [1, 200]:
                for name, records, getter, names in [
                        ('party', parties, Party.get_forfait_balance,
                            ['forfait_remaining', 'forfait_pending',
                                'forfait_available']),
                        ('credit', credits, Credit.get_balance,
                            ['consumed', 'remaining']),
                        ('request', requests, Request.get_times,
                            ['time_spent', 'time_billed']),
                        ]:
                    with count_queries() as queries:
                        values = getter(records[:size], names)
                    counts[name, size] = len(queries)
                    self.assertEqual(len(values[names[0]]), size)
            for name in ['party', 'credit', 'request']:
                self.assertEqual(counts[name, 1], counts[name, 200], name)
            # one statement per slice of parties: hours, consumed, pending
            self.assertEqual(counts['party', 200], 1)

            balance = Party.get_forfait_balance(parties[:1], [
                    'forfait_remaining', 'forfait_pending'])
            # 12:00 less one done request billed 1:15; 1:15 pending
            self.assertEqual(
                balance['forfait_remaining'][parties[0].id],
                12 * HOUR - (HOUR + HOUR / 4))
            self.assertEqual(
                balance['forfait_pending'][parties[0].id], HOUR + HOUR / 4)

    @with_transaction()
    def test_balance_company_today(self):
        "Balances count the credits valid today in the company's time zone"
        pool = Pool()
        Party = pool.get('party.party')
        Company = pool.get('company.company')
        Credit = pool.get('forfait.credit')
        Date = pool.get('ir.date')
        company = create_company()
        with set_company(company):
            def today(zone):
                return dt.datetime.now(ZoneInfo(zone)).date()
            # UTC-11 and UTC+14: never the same date
            Company.write([company], {'timezone': 'Pacific/Pago_Pago'})
            behind = Date.today()
            self.assertEqual(behind, today('Pacific/Pago_Pago'))
            Company.write([company], {'timezone': 'Pacific/Kiritimati'})
            ahead = Date.today()
            self.assertEqual(ahead, today('Pacific/Kiritimati'))
            self.assertGreater(ahead, behind)
            # the time zone is cached: the company is not read again
            with count_queries() as queries:
                self.assertEqual(Date.today(), ahead)
            self.assertEqual(queries, [])

            party = Party(name="Client")
            party.save()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': 12 * HOUR, 'start_date': ahead,
                        'end_date': ahead + dt.timedelta(364),
                        'reason': 'Test'}])

            def hours():
                return Party.get_forfait_balance(
                    [party], ['forfait_hours'])['forfait_hours'][party.id]
            self.assertEqual(hours(), 12 * HOUR)
            Company.write([company], {'timezone': 'Pacific/Pago_Pago'})
            self.assertEqual(hours(), dt.timedelta())


@unittest.skipUnless(
    backend.name == 'postgresql', "SQLite has no row locks")
class ConcurrentPostingTestCase(DatabaseTestCase):
    "Requests closed at once never consume more than a credit holds"

    def run_in_transaction(self, func, context=None, attempts=200):
        """Run func in a committed transaction, retried as the RPC layer
        does when locks are missing or busy"""
        extras = {}
        for _ in range(attempts):
            try:
                with Transaction().start(
                        DB_NAME, 1, context=context, **extras) as transaction:
                    try:
                        result = func()
                    except TransactionError as e:
                        transaction.rollback()
                        e.fix(extras)
                        continue
                    transaction.commit()
                    return result
            except backend.DatabaseOperationalError:
                # the locks were not granted at start: wait and try again
                self.lock_waits += 1
                time.sleep(0.05)
        raise RuntimeError("gave up after %s attempts" % attempts)

    lock_waits = 0

    def test_concurrent_postings(self):
        def set_up():
            pool = Pool()
            Party = pool.get('party.party')
            Credit = pool.get('forfait.credit')
            Request = pool.get('forfait.request')
            Line = pool.get('timesheet.line')
            company = create_company()
            with set_company(company):
                employee = create_employee(company)
                party = Party(name="Hôtel Bakoua Plage")
                party.save()
                today = pool.get('ir.date').today()
                credit, = Credit.create([{
                            'party': party.id, 'company': company.id,
                            'hours': 10 * HOUR, 'start_date': today,
                            'end_date': today + dt.timedelta(364),
                            'reason': "Test"}])
                requests = Request.create([{
                            'party': party.id, 'company': company.id,
                            'subject': "Update %s" % i} for i in range(12)])
                Request.open(requests)
                Line.create([{
                            'forfait_request': r.id,
                            'employee': employee.id, 'company': company.id,
                            'duration': HOUR} for r in requests])
            return company.id, credit.id, [r.id for r in requests]

        company_id, credit_id, request_ids = self.run_in_transaction(set_up)
        context = {'company': company_id, 'companies': [company_id]}
        errors = []

        def close(request_id):
            def done():
                Request = Pool().get('forfait.request')
                Request.done([Request(request_id)])
            try:
                self.run_in_transaction(done, context=context)
            except Exception as exception:
                errors.append(exception)

        threads = [
            threading.Thread(target=close, args=(i,)) for i in request_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])

        def check():
            pool = Pool()
            Credit = pool.get('forfait.credit')
            Consumption = pool.get('forfait.consumption')
            credit = Credit(credit_id)
            consumptions = Consumption.search([])
            self.assertEqual(credit.remaining, dt.timedelta(0))
            self.assertEqual(credit.state, 'exhausted')
            self.assertEqual(
                sum((c.duration for c in consumptions), dt.timedelta()),
                12 * HOUR)
            self.assertEqual(
                sum((c.duration for c in consumptions if not c.credit),
                    dt.timedelta()), 2 * HOUR)
        self.run_in_transaction(check, context=context)
