"SQL statements per operation do not grow with the number of records"
import datetime as dt

from sql.functions import CurrentTimestamp

from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from ..party import BALANCE_FIELDS
from .database import DatabaseTestCase, count_queries

HOUR = dt.timedelta(hours=1)


def log_time(requests, employee, duration=HOUR + HOUR / 6):
    Line = Pool().get('timesheet.line')
    Line.create([{
                'forfait_request': r.id, 'employee': employee.id,
                'duration': duration} for r in requests])


class QueryCountTestCase(DatabaseTestCase):
    "Statement counts of the balances and of a posting"

    @with_transaction()
    def test_balance_read(self):
        "Reading the balances of 1, 100 or 1,000 parties: same statements"
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            # one INSERT: Party.create takes tens of ms a party
            party = Party.__table__()
            Transaction().connection.cursor().execute(*party.insert(
                    [party.name, party.code, party.active, party.create_uid,
                        party.create_date],
                    [["Client %04d" % i, 'C%04d' % i, True, 0,
                        CurrentTimestamp()] for i in range(1000)]))
            parties = Party.search(
                [('name', 'like', 'Client %')], order=[('name', 'ASC')])
            # the first 100 clients have a credit, every tenth of them a
            # done and an open request; the others nothing: the statements
            # are the same
            Credit.create([{
                        'party': p.id, 'company': company.id,
                        'hours': 12 * HOUR, 'start_date': today,
                        'end_date': today + dt.timedelta(days=364),
                        'reason': "Test"} for p in parties[:100]])
            requests = Request.create([{
                        'party': p.id, 'company': company.id,
                        'subject': "Update"}
                    for p in parties[:100:10] for _ in range(2)])
            Request.open(requests)
            log_time(requests, employee)
            Request.done(requests[::2])
            ids = [p.id for p in parties]

            Party.read(ids[:1], BALANCE_FIELDS)  # warm the caches
            counts = {}
            for size in [1, 100, 1000]:
                with count_queries() as queries:
                    values = Party.read(ids[:size], BALANCE_FIELDS)
                counts[size] = len(queries)
                self.assertEqual(len(values), size)
            self.assertEqual(counts[1], counts[100], counts)
            self.assertEqual(counts[1], counts[1000], counts)

            first, = Party.read(ids[:1], BALANCE_FIELDS)
            billed = HOUR + HOUR / 4
            self.assertEqual(first['forfait_remaining'], 12 * HOUR - billed)
            self.assertEqual(first['forfait_pending'], billed)
            self.assertEqual(
                first['forfait_available'], 12 * HOUR - 2 * billed)

    @with_transaction()
    def test_posting(self):
        "Posting a request costs the same whatever the party's history"
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        company = create_company()
        with set_company(company):
            employee = create_employee(company)
            today = pool.get('ir.date').today()
            party = Party(name="Hôtel Bakoua Plage")
            party.save()
            # large enough for no alert threshold to be crossed
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': 1000 * HOUR, 'start_date': today,
                        'end_date': today + dt.timedelta(days=364),
                        'reason': "Test"}])

            def post(previous):
                "Post one request after previous others"
                requests = Request.create([{
                            'party': party.id, 'company': company.id,
                            'subject': "Update %s" % i}
                        for i in range(previous + 1)])
                Request.open(requests)
                log_time(requests, employee)
                if previous:
                    Request.done(requests[:-1])
                request = Request(requests[-1].id)
                with count_queries() as queries:
                    Request.done([request])
                return len(queries)

            post(0)  # warm the caches
            counts = [post(1), post(40)]
            self.assertEqual(counts[0], counts[1], counts)
