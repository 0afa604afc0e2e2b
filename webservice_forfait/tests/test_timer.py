"The request timer: one per user, exact elapsed time, never on posted time"
import datetime as dt
import json

from trytond.exceptions import UserError
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from trytond.transaction import Transaction

from ..exceptions import TimerError
from ..timer import now
from .database import DatabaseTestCase

HOUR = dt.timedelta(hours=1)


class TimerTestCase(DatabaseTestCase):
    "Request timer"

    def setup_data(self, company):
        "Return two staff users and two open requests of a client"
        pool = Pool()
        User = pool.get('res.user')
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        Request = pool.get('forfait.request')
        ModelData = pool.get('ir.model.data')
        group = ModelData.get_id('webservice_forfait', 'group_forfait')
        users = []
        for login in ['ginette', 'marius']:
            employee = create_employee(company, name=login.title())
            user, = User.create([{
                        'name': login.title(), 'login': login,
                        'companies': [('add', [company.id])],
                        'company': company.id,
                        'employees': [('add', [employee.id])],
                        'employee': employee.id,
                        'groups': [('add', [group])],
                        }])
            users.append(user)
        party = Party(name="Boulangerie Chez Lucette")
        party.save()
        today = pool.get('ir.date').today()
        Credit.create([{
                    'party': party.id, 'company': company.id,
                    'hours': 12 * HOUR, 'start_date': today,
                    'end_date': today + dt.timedelta(days=364),
                    'reason': "Test"}])
        requests = Request.create([{
                    'party': party.id, 'company': company.id,
                    'subject': subject}
                for subject in ["Menu de Noël", "Horaires d'été"]])
        Request.open(requests)
        return users, requests

    @with_transaction()
    def test_exact_elapsed_time(self):
        "Stopping logs the exact elapsed time; posting rounds it"
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Request = pool.get('forfait.request')
        company = create_company()
        company.timezone = 'America/Martinique'
        company.save()
        with set_company(company):
            (user, _), (request, _) = self.setup_data(company)
            start = dt.datetime(2026, 12, 4, 2, 50, 7)
            timer = Timer.start_on([request], user=user.id, at=start)
            elapsed = dt.timedelta(hours=1, minutes=23, seconds=45)
            line, = Timer.stop([timer], at=start + elapsed)

            self.assertEqual(
                line.duration, dt.timedelta(hours=1, minutes=23, seconds=45))
            self.assertEqual(line.forfait_request, request)
            self.assertEqual(line.work, request.timesheet_work)
            self.assertEqual(line.employee, user.employee)
            # 02:50 UTC is 22:50 the day before in the company's time zone
            self.assertEqual(line.date, dt.date(2026, 12, 3))
            self.assertFalse(Timer.search([]))
            request = Request(request.id)
            self.assertEqual(
                request.time_spent,
                dt.timedelta(hours=1, minutes=23, seconds=45))
            self.assertEqual(request.time_billed, dt.timedelta(hours=1.5))

    @with_transaction()
    def test_one_timer_per_user(self):
        "Starting a second timer stops the first; users time side by side"
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Line = pool.get('timesheet.line')
        company = create_company()
        with set_company(company):
            (ginette, marius), (first, second) = self.setup_data(company)
            start = dt.datetime(2026, 12, 3, 13, 0)
            Timer.start_on([first], user=ginette.id, at=start)
            Timer.start_on([first], user=marius.id, at=start)
            timer = Timer.start_on(
                [second], user=ginette.id, at=start + 2 * HOUR / 3)

            running = Timer.search([], order=[('user.login', 'ASC')])
            self.assertEqual(
                [(t.user, t.request) for t in running],
                [(ginette, second), (marius, first)])
            self.assertEqual(timer.start, start + 2 * HOUR / 3)
            line, = Line.search([])
            self.assertEqual(
                (line.employee, line.forfait_request, line.duration),
                (ginette.employee, first, 2 * HOUR / 3))

            # the database refuses a second running timer of a user
            with self.assertRaises(UserError):
                Timer.create([{
                            'user': ginette.id, 'request': first.id,
                            'start': start}])

    @with_transaction()
    def test_buttons(self):
        "The buttons act on the timer of the user who clicks"
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        company = create_company()
        with set_company(company):
            (ginette, marius), (request, _) = self.setup_data(company)
            transaction = Transaction()
            with transaction.set_user(ginette.id):
                Request.start_timer([request])
                mine = Request(request.id)
                self.assertTrue(mine.timer_running)
                self.assertIsNotNone(mine.timer_start)
            with transaction.set_user(marius.id):
                theirs = Request(request.id)
                self.assertFalse(theirs.timer_running)
                self.assertIsNone(theirs.timer_start)
                Request.stop_timer([theirs])  # nothing of theirs runs
            self.assertFalse(Line.search([]))
            timer, = Timer.search([])
            Timer.write([timer], {'start': timer.start - HOUR})
            with transaction.set_user(ginette.id):
                Request.stop_timer([Request(request.id)])
                self.assertFalse(Request(request.id).timer_running)
            line, = Line.search([])
            self.assertEqual(line.employee, ginette.employee)
            self.assertEqual(line.duration, HOUR)

    @with_transaction()
    def test_done_request(self):
        """Marking done logs the running timers before posting; a done
        request takes no timer and no timer time"""
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        company = create_company()
        with set_company(company):
            (ginette, marius), (request, other) = self.setup_data(company)
            Timer.start_on(
                [request], user=ginette.id, at=now() - HOUR / 2)
            Request.done([request])

            request = Request(request.id)
            self.assertEqual(request.state, 'done')
            self.assertFalse(Timer.search([]))
            line, = Line.search([])
            self.assertGreaterEqual(line.duration, HOUR / 2)
            self.assertEqual(request.billed, request.time_billed)
            self.assertGreaterEqual(request.billed, HOUR / 2)
            billed = request.billed

            with self.assertRaises(TimerError) as error:
                Timer.start_on([request], user=marius.id)
            self.assertIn(request.rec_name, str(error.exception))
            self.assertFalse(Timer.search([]))

            # a timer whose request got done without it (written behind
            # the ORM's back) is dropped on stop, its time never posted
            timer = Timer.start_on([other], user=marius.id, at=now() - HOUR)
            table = Request.__table__()
            Transaction().connection.cursor().execute(*table.update(
                    [table.state], ['done'], where=table.id == other.id))
            for cache in Transaction().cache.values():
                cache.clear()
            self.assertEqual(Timer.stop([Timer(timer.id)]), [])
            self.assertFalse(Timer.search([]))
            self.assertEqual(len(Line.search([])), 1)
            self.assertEqual(Request(request.id).billed, billed)

    @with_transaction()
    def test_cancel_and_wait_stop_timers(self):
        "A request leaving the timed states keeps its timers' time"
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        company = create_company()
        with set_company(company):
            (ginette, marius), (first, second) = self.setup_data(company)
            Timer.start_on([first], user=ginette.id, at=now() - HOUR)
            Timer.start_on([second], user=marius.id, at=now() - HOUR)
            Request.cancel([first])
            Request.draft([second])
            Request.wait([second])

            self.assertFalse(Timer.search([]))
            self.assertEqual(
                sorted(l.forfait_request.id for l in Line.search([])),
                sorted([first.id, second.id]))

    @with_transaction()
    def test_flag_long_running(self):
        "A timer running too long is flagged to its owner, once"
        pool = Pool()
        Timer = pool.get('forfait.request.timer')
        Notification = pool.get('res.notification')
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            (ginette, marius), (first, second) = self.setup_data(company)
            config = Config(1)
            self.assertEqual(config.timer_max_duration, 4 * HOUR)
            Timer.start_on([first], user=ginette.id, at=now() - 5 * HOUR)
            Timer.start_on([second], user=marius.id, at=now() - 3 * HOUR)

            Timer.flag_long_running()
            Timer.flag_long_running()

            notification, = Notification.search([])
            self.assertEqual(notification.user, ginette)
            self.assertEqual(notification.model, 'forfait.request')
            self.assertEqual(json.loads(notification.records), [first.id])
            self.assertIn(first.rec_name, notification.label)
            self.assertEqual(
                [t.flagged for t in Timer.search(
                        [], order=[('user.login', 'ASC')])],
                [True, False])

            config.timer_max_duration = None
            config.save()
            Timer.write(Timer.search([]), {'flagged': False})
            Timer.flag_long_running()
            self.assertEqual(len(Notification.search([])), 1)
