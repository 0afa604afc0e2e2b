"Priorities and deadlines in opening hours, Martinique's holidays, reminders"
import datetime as dt
import json
import unittest
from decimal import Decimal
from zoneinfo import ZoneInfo

from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from ..sla import ClosedDays, OpeningHours, now
from .database import DatabaseTestCase, count_queries

HOUR = dt.timedelta(hours=1)
MARTINIQUE = ZoneInfo('America/Martinique')  # UTC-4, no summer time
WEEK = {
    d: [(dt.time(8), dt.time(12)), (dt.time(13), dt.time(17))]
    for d in range(5)}


def utc(*args):
    "The naive UTC timestamp of a time in Martinique"
    return dt.datetime(*args, tzinfo=MARTINIQUE).astimezone(
        dt.timezone.utc).replace(tzinfo=None)


class OpeningHoursTestCase(unittest.TestCase):
    "Time counted in opening hours"

    def setUp(self):
        self.hours = OpeningHours(
            WEEK, ClosedDays('FR', '972', []), MARTINIQUE)

    def test_weekend(self):
        "Friday afternoon plus 4 hours is Monday morning"
        start = utc(2026, 12, 4, 15, 0)
        self.assertEqual(
            self.hours.add(start, 4 * HOUR), utc(2026, 12, 7, 10, 0))
        self.assertEqual(
            self.hours.elapsed(start, utc(2026, 12, 7, 10, 0)), 4 * HOUR)

    def test_martinique_holidays(self):
        """22 May (abolition of slavery in Martinique), the weekend and
        Whit Monday are skipped"""
        start = utc(2026, 5, 21, 16, 0)  # Thursday
        end = self.hours.add(start, 8 * HOUR)
        self.assertEqual(end, utc(2026, 5, 26, 16, 0))  # Tuesday
        self.assertEqual(self.hours.elapsed(start, end), 8 * HOUR)
        # without the region's holidays, 22 May is a working day
        national = OpeningHours(WEEK, ClosedDays('FR', None, []), MARTINIQUE)
        self.assertEqual(
            national.add(start, 8 * HOUR), utc(2026, 5, 22, 16, 0))

    def test_outside_hours(self):
        "A request received at night counts from the next opening"
        start = utc(2026, 12, 2, 22, 30)
        self.assertEqual(self.hours.add(start, HOUR), utc(2026, 12, 3, 9, 0))
        self.assertEqual(
            self.hours.add(utc(2026, 12, 3, 11, 30), HOUR),
            utc(2026, 12, 3, 13, 30))
        self.assertEqual(
            self.hours.elapsed(utc(2026, 12, 3, 11, 0), utc(2026, 12, 3, 14)),
            2 * HOUR)

    def test_closures_and_no_hours(self):
        "Extra closures are skipped; without opening hours, no deadline"
        closed = OpeningHours(
            WEEK, ClosedDays('FR', '972', [dt.date(2026, 12, 7)]), MARTINIQUE)
        self.assertEqual(
            closed.add(utc(2026, 12, 4, 15, 0), 4 * HOUR),
            utc(2026, 12, 8, 10, 0))
        self.assertIsNone(OpeningHours({}, ClosedDays(None, None, [])).add(
                utc(2026, 12, 4, 15, 0), HOUR))


class SLATestCase(DatabaseTestCase):
    "Deadlines of requests"

    def setup_company(self):
        company = create_company()
        company.timezone = 'America/Martinique'
        company.save()
        return company

    def create_request(self, company, priority, start, **values):
        pool = Pool()
        Party = pool.get('party.party')
        Request = pool.get('forfait.request')
        party = Party(name="Boulangerie Chez Lucette", addresses=[{}])
        party.save()
        request, = Request.create([dict({
                        'party': party.id, 'company': company.id,
                        'subject': "C'est urgent, le numéro a changé",
                        'priority': priority, 'sla_start': start},
                    **values)])
        return request

    @with_transaction()
    def test_deadlines(self):
        "Deadlines from the priority across a weekend and a holiday"
        Request = Pool().get('forfait.request')
        company = self.setup_company()
        with set_company(company):
            request = self.create_request(
                company, 'high', utc(2026, 5, 21, 16, 0))
            # high: first response in 2 h, resolution in 8 h (defaults)
            self.assertEqual(
                request.response_deadline, utc(2026, 5, 26, 9, 0))
            self.assertEqual(
                request.resolution_deadline, utc(2026, 5, 26, 16, 0))

            Request.write([request], {'priority': 'urgent'})
            request = Request(request.id)
            self.assertEqual(
                request.response_deadline, utc(2026, 5, 21, 17, 0))
            self.assertEqual(
                request.resolution_deadline, utc(2026, 5, 26, 11, 0))
            # both are past: shown late until the request is handled
            self.assertEqual(request.response_status, 'late')
            self.assertEqual(request.resolution_status, 'late')
            Request.open([request])
            request = Request(request.id)
            self.assertIsNotNone(request.first_response)
            self.assertEqual(request.response_status, 'met')

            # sorted on: urgent before low
            low = self.create_request(company, 'low', now())
            self.assertEqual(
                Request.search([], order=[('priority', 'DESC')]),
                [request, low])
            self.assertEqual(
                Request.search([], order=[('resolution_deadline', 'ASC')]),
                [request, low])
            self.assertEqual(low.resolution_status, 'ok')

    @with_transaction()
    def test_forfait_service_level(self):
        "The targets of the client's forfait replace the default ones"
        pool = Pool()
        Level = pool.get('forfait.service_level')
        Request = pool.get('forfait.request')
        Credit = pool.get('forfait.credit')
        ModelData = pool.get('ir.model.data')
        Service = pool.get('sale.subscription.service')
        company = self.setup_company()
        with set_company(company):
            service = Service(ModelData.get_id(
                    'webservice_forfait', 'service_forfait_3h'))
            template = service.product.template
            Level.create([{
                        'product': template.id, 'priority': 'normal',
                        'response_time': HOUR, 'resolution_time': 2 * HOUR,
                        }])
            start = utc(2026, 12, 4, 15, 0)
            request = self.create_request(company, 'normal', start)
            # default normal: 4 h and 24 h
            self.assertEqual(
                request.response_deadline, utc(2026, 12, 7, 10, 0))

            # a credit from a subscription line of the 3 h forfait
            from .test_lifecycle import LifecycleTestCase
            LifecycleTestCase.subscribe(
                None, request.party, '3h', pool.get('ir.date').today())
            self.assertTrue(Credit.search([('party', '=', request.party)]))
            Request.write([request], {'priority': 'normal'})
            request = Request(request.id)
            self.assertEqual(
                request.response_deadline, utc(2026, 12, 4, 16, 0))
            self.assertEqual(
                request.resolution_deadline, utc(2026, 12, 4, 17, 0))

    @with_transaction()
    def test_pause_while_waiting(self):
        "Time waiting for hours does not count against the deadlines"
        Request = Pool().get('forfait.request')
        company = self.setup_company()
        with set_company(company):
            start = utc(2026, 12, 3, 8, 0)  # Thursday
            request = self.create_request(company, 'normal', start)
            # normal: resolution in 24 h of opening hours
            resolution = utc(2026, 12, 7, 17, 0)
            self.assertEqual(request.resolution_deadline, resolution)

            Request.wait([request])
            request = Request(request.id)
            self.assertEqual(request.state, 'waiting')
            self.assertIsNotNone(request.sla_paused_since)
            self.assertIsNone(request.resolution_deadline)
            self.assertIsNone(request.resolution_status)

            Request.start([request])
            request = Request(request.id)
            self.assertIsNone(request.sla_paused_since)
            self.assertIsNotNone(request.resolution_deadline)
            self.assertGreaterEqual(
                request.resolution_deadline, resolution)

            # waiting from Friday 10:00 to Monday 10:00 is 8 opening hours
            with Transaction().set_context(_forfait_sla=True):
                Request.write([request], {'sla_paused': dt.timedelta()})
            Request.sla_pause([request], at=utc(2026, 12, 4, 10, 0))
            Request.sla_resume(
                [Request(request.id)], at=utc(2026, 12, 7, 10, 0))
            request = Request(request.id)
            self.assertEqual(request.sla_paused, 8 * HOUR)
            Request.set_deadlines([request])
            request = Request(request.id)
            self.assertEqual(
                request.resolution_deadline, utc(2026, 12, 8, 17, 0))

    @with_transaction()
    def test_reminder_once(self):
        "The staff are told once of a deadline near or past"
        pool = Pool()
        Request = pool.get('forfait.request')
        Notification = pool.get('res.notification')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        company = self.setup_company()
        with set_company(company):
            group = ModelData.get_id('webservice_forfait', 'group_forfait')
            User.create([{
                        'name': "Ginette", 'login': 'ginette',
                        'groups': [('add', [group])]}])
            staff = User.search([('groups', '=', group)])
            self.assertGreaterEqual(len(staff), 2)
            late = self.create_request(
                company, 'high', now() - dt.timedelta(days=30))
            later = self.create_request(company, 'low', now())
            Request.open([later])  # answered: only its resolution counts

            Request.remind_deadlines()
            Request.remind_deadlines()

            notifications = Notification.search([])
            # one for the response and one for the resolution, per user
            self.assertEqual(len(notifications), 2 * len(staff))
            self.assertEqual(
                {n.user for n in notifications}, set(staff))
            self.assertEqual(
                {tuple(json.loads(n.records)) for n in notifications},
                {(late.id,)})
            late = Request(late.id)
            self.assertTrue(late.response_reminded)
            self.assertTrue(late.resolution_reminded)
            self.assertFalse(Request(later.id).resolution_reminded)

            # a new deadline is reminded again
            Request.write([late], {'priority': 'urgent'})
            self.assertFalse(Request(late.id).resolution_reminded)
            with Transaction().set_user(0):
                Request.remind_deadlines()
            self.assertEqual(len(Notification.search([])), 4 * len(staff))

    @with_transaction()
    def test_list_query_count(self):
        "The request list with its new columns: same statements for 1 or 200"
        pool = Pool()
        Party = pool.get('party.party')
        Request = pool.get('forfait.request')
        company = self.setup_company()
        with set_company(company):
            party = Party(name="Hôtel Bakoua Plage")
            party.save()
            Request.create([{
                        'party': party.id, 'company': company.id,
                        'subject': "Update %s" % i,
                        'priority': ['low', 'normal', 'high', 'urgent'][i % 4],
                        'sla_start': now() - dt.timedelta(hours=i)}
                    for i in range(200)])
            names = [
                'number', 'request_date', 'party', 'subject', 'priority',
                'response_deadline', 'resolution_deadline',
                'response_status', 'resolution_status', 'timer_running',
                'time_spent', 'time_billed', 'state']
            ids = [r.id for r in Request.search([])]
            Request.read(ids[:1], names)  # warm the caches
            counts = {}
            for size in [1, 200]:
                with count_queries() as queries:
                    values = Request.read(ids[:size], names)
                counts[size] = len(queries)
                self.assertEqual(len(values), size)
            self.assertEqual(counts[1], counts[200], counts)
            self.assertIn('late', {v['resolution_status'] for v in values})

    @with_transaction()
    def test_search_and_hours(self):
        "Free-text search on the client, sender and description; graph hours"
        pool = Pool()
        Request = pool.get('forfait.request')
        Monthly = pool.get('forfait.consumption.monthly')
        company = self.setup_company()
        with set_company(company):
            request = self.create_request(
                company, 'normal', now(),
                description="Changer le numéro de téléphone du site",
                email_sender='lucette.marie@chezlucette.mq')
            self.create_request(company, 'low', now(), subject="Menu")
            for text in [
                    request.number, 'urgent', 'Lucette', 'téléphone',
                    'chezlucette.mq']:
                found = Request.search(
                    [('rec_name', 'ilike', '%%%s%%' % text)])
                self.assertIn(request, found, text)
            self.assertEqual(
                Request.search([('rec_name', 'ilike', '%téléphone%')]),
                [request])
            monthly = Monthly(duration=dt.timedelta(hours=110, minutes=20))
            self.assertEqual(monthly.get_hours('hours'), Decimal('110.33'))
