"Reliability: the ledger cannot be bypassed, nothing is done twice"
import datetime as dt
import re
import threading
import unittest
from collections import Counter
from contextlib import contextmanager

from trytond import backend
from trytond.i18n import gettext
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, RouteTestCase, with_transaction
from trytond.transaction import Transaction

from ..exceptions import ForfaitValidationError, LedgerAccessError
from ..outbox import email_message
from . import test_inbound_email
from .database import DatabaseTestCase
from .test_inbound_email import IDENTIFIER, use_smtp_server

HOUR = dt.timedelta(hours=1)


def set_up_ledger():
    """Return the company, an employee, two clients with a credit each and
    a done request of the first, billed 1:00"""
    pool = Pool()
    Party = pool.get('party.party')
    Credit = pool.get('forfait.credit')
    Request = pool.get('forfait.request')
    Line = pool.get('timesheet.line')
    Date = pool.get('ir.date')
    company = create_company()
    with set_company(company):
        employee = create_employee(company)
        first, second = Party.create(
            [{'name': "Chez Lucette"}, {'name': "Hôtel Bakoua"}])
        today = Date.today()
        Credit.create([{
                    'party': p.id, 'company': company.id,
                    'hours': 10 * HOUR, 'start_date': today,
                    'end_date': today + dt.timedelta(364),
                    'reason': "Test"} for p in [first, second]])
        request, = Request.create([{
                    'party': first.id, 'company': company.id,
                    'subject': "Horaires"}])
        Request.open([request])
        Line.create([{
                    'forfait_request': request.id, 'employee': employee.id,
                    'company': company.id, 'duration': HOUR}])
        Request.done([request])
    return company, employee, first, second, request


def create_staff_user(company, admin=False):
    "Return a user of the Forfait group (and Forfait Administration)"
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    groups = [ModelData.get_id('webservice_forfait', 'group_forfait')]
    if admin:
        groups.append(
            ModelData.get_id('webservice_forfait', 'group_forfait_admin'))
    user, = User.create([{
                'name': "Staff", 'login': 'staff-%s' % admin,
                'groups': [('add', groups)],
                'companies': [('add', [company.id])],
                'company': company.id,
                }])
    return user


@contextmanager
def as_rpc(user_id, company):
    "Run as user_id with access checked, as an RPC call does"
    transaction = Transaction()
    with transaction.set_user(user_id), transaction.set_context(
            _check_access=True, company=company.id,
            companies=[company.id]):
        yield


class LedgerGuardTestCase(DatabaseTestCase):
    """A request's state and posted figures change only through its
    workflow, whoever calls and however"""

    def assertRefused(self, message, func, *args):
        "Assert func raises message of the module and changes nothing"
        pool = Pool()
        Request = pool.get('forfait.request')
        Consumption = pool.get('forfait.consumption')

        def snapshot():
            return [
                (r.id, r.state, r.billed, r.done_date, r.party.id,
                    r.subject, len(r.timesheet_lines))
                for r in Request.search([])], sorted(
                (c.request.id, c.party.id, c.duration)
                for c in Consumption.search([]))
        before = snapshot()
        with self.assertRaises(LedgerAccessError) as cm:
            func(*args)
        template = gettext('webservice_forfait.' + message)
        pattern = '.+'.join(
            re.escape(p) for p in re.split(r'%\(\w+\)s', template))
        self.assertRegex(cm.exception.message, '^%s$' % pattern)
        self.assertEqual(snapshot(), before)
        return cm.exception

    def check_refusals(self, company, second, request):
        Request = Pool().get('forfait.request')
        for values in [
                {'state': 'open'},
                {'state': 'open', 'billed': None},
                {'billed': 3 * HOUR},
                {'done_date': None},
                {'consumptions': [('delete', [
                                c.id for c in request.consumptions])]},
                ]:
            with self.subTest(values=values):
                self.assertRefused(
                    'msg_request_workflow_field',
                    Request.write, [Request(request.id)], values)
        for values in [
                {'party': second.id},
                {'subject': "Autre"},
                {'timesheet_lines': [('delete', [
                                l.id for l in request.timesheet_lines])]},
                ]:
            with self.subTest(values=values):
                self.assertRefused(
                    'msg_request_closed',
                    Request.write, [Request(request.id)], values)
        # created straight in a closed state: no posting
        for values in [
                {'state': 'done'}, {'state': 'open'},
                {'billed': HOUR}, {'done_date': dt.date.today()}]:
            with self.subTest(create=values):
                self.assertRefused(
                    'msg_request_create_state',
                    Request.create, [dict(
                            party=second.id, company=company.id,
                            subject="Import", **values)])
        # clients saving a done request send its lines again: no change
        Request.write([Request(request.id)], {
                'consumptions': [('add', [
                            c.id for c in request.consumptions])],
                'timesheet_lines': [('add', [
                            l.id for l in request.timesheet_lines])],
                'state': 'done'})
        # an open request's state cannot be written either
        open_, = Request.search([('state', '=', 'open')])
        self.assertRefused(
            'msg_request_workflow_field',
            Request.write, [open_], {'state': 'done'})
        # what is not guarded stays writable on open requests
        Request.write([open_], {'subject': "Horaires d'été"})
        self.assertEqual(open_.subject, "Horaires d'été")

    def open_second_request(self, company, employee, party):
        pool = Pool()
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        with set_company(company):
            request, = Request.create([{
                        'party': party.id, 'company': company.id,
                        'subject': "Menu"}])
            Request.open([request])
            Line.create([{
                        'forfait_request': request.id,
                        'employee': employee.id,
                        'company': company.id, 'duration': HOUR}])
        return request

    @with_transaction()
    def test_orm(self):
        "Plain ORM writes of the workflow's fields are refused"
        company, employee, first, second, request = set_up_ledger()
        self.open_second_request(company, employee, first)
        with set_company(company):
            self.check_refusals(company, second, request)

    @with_transaction()
    def test_rpc_staff(self):
        "A user of the Forfait group is refused over RPC"
        company, employee, first, second, request = set_up_ledger()
        self.open_second_request(company, employee, first)
        user = create_staff_user(company)
        with as_rpc(user.id, company):
            self.check_refusals(company, second, request)

    @with_transaction()
    def test_rpc_admin(self):
        "The administrator is refused over RPC too"
        company, employee, first, second, request = set_up_ledger()
        self.open_second_request(company, employee, first)
        user = create_staff_user(company, admin=True)
        with as_rpc(user.id, company):
            self.check_refusals(company, second, request)
        with as_rpc(1, company):
            self.check_refusals(company, second, request)

    @with_transaction()
    def test_workflow_posts_once(self):
        "Through the workflow, done, reopened and done again posts the net"
        pool = Pool()
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        company, employee, first, second, request = set_up_ledger()
        user = create_staff_user(company, admin=True)
        with as_rpc(user.id, company):
            Request.reverse([request], "Oubli")
            self.assertEqual(request.state, 'open')
            self.assertEqual(request.billed, None)
        with set_company(company):
            Line.create([{
                        'forfait_request': request.id,
                        'employee': employee.id,
                        'company': company.id, 'duration': 2 * HOUR}])
        other = self.open_second_request(company, employee, second)
        with as_rpc(user.id, company):
            Request.done([request])
            self.assertEqual(request.state, 'done')
            self.assertEqual(request.billed, 3 * HOUR)
            self.assertEqual(
                sum((c.duration for c in request.consumptions),
                    dt.timedelta()), 3 * HOUR)
            self.assertEqual(
                {c.party for c in request.consumptions}, {first})
            self.assertEqual(
                first.forfait_remaining, 10 * HOUR - 3 * HOUR)
            self.assertEqual(second.forfait_remaining, 10 * HOUR)
            # cancelled and back to draft through the buttons
            Request.cancel([other])
            self.assertRefused(
                'msg_request_closed',
                Request.write, [other], {'subject': "Carte"})
            Request.draft([other])
            Request.write([other], {'subject': "Carte"})
            self.assertEqual(other.subject, "Carte")
        with set_company(company):
            Request.cancel([other])
            Request.delete([other])
            self.assertEqual(Request.search([('id', '=', other.id)]), [])

    @with_transaction()
    def test_writable_when_closed(self):
        "A field added to _writable_when_closed stays writable when done"
        Request = Pool().get('forfait.request')
        company, employee, first, second, request = set_up_ledger()
        writable = Request._writable_when_closed
        self.assertIsInstance(writable, set)
        Request._writable_when_closed = writable | {'contact'}
        try:
            with set_company(company):
                Request.write([request], {'contact': None})
                self.assertRefused(
                    'msg_request_closed',
                    Request.write, [request], {'subject': "Autre"})
        finally:
            Request._writable_when_closed = writable


def committed(func, *args):
    "Run func in a transaction of its own, committed"
    with Transaction().start(DB_NAME, 0) as transaction:
        result = func(*args)
        transaction.commit()
    return result


def store_mails(count, prefix):
    "Store count pending mails straight in the outbox; return their ids"
    Outbox = Pool().get('forfait.outbox')
    mails = []
    for i in range(count):
        message = email_message(
            'update@webservice.mq', 'client-%s@example.mq' % i,
            '%s %s' % (prefix, i), "Bonjour")
        mails.append(Outbox(
                recipients=str(message['To']), subject=str(message['Subject']),
                message_id=str(message['Message-ID']),
                data=message.as_bytes()))
    Outbox.save(mails)
    return [m.id for m in mails]


def outbox_states(ids):
    Outbox = Pool().get('forfait.outbox')
    return Counter(o.state for o in Outbox.browse(ids))


@unittest.skipUnless(
    backend.name == 'postgresql', "SQLite has no row locks")
class OutboxConcurrencyTestCase(DatabaseTestCase):
    "Each mail reaches the real SMTP server once, whoever sends it"

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        super().setUpClass()

    def deliveries(self, ids):
        "Return how many times the SMTP server received each mail"
        def message_ids():
            return [o.message_id for o in Pool().get(
                    'forfait.outbox').browse(ids)]
        expected = committed(message_ids)
        received = Counter(
            str(m['Message-ID']) for m in self.smtp.messages)
        return [received[m] for m in expected]

    def test_parallel_runs(self):
        "Two runs at the same moment (cron and Run once) send each mail once"
        ids = committed(store_mails, 12, "Parallel")
        barrier = threading.Barrier(2)
        errors = []

        def run():
            try:
                with Transaction().start(DB_NAME, 0) as transaction:
                    Outbox = Pool().get('forfait.outbox')
                    # both runs see all the mails pending before sending
                    messages = Outbox.search([
                            ('state', '=', 'pending'), ('id', 'in', ids)])
                    self.assertEqual(len(messages), 12)
                    barrier.wait()
                    Outbox.send(messages)
                    transaction.commit()
            except Exception as exception:
                errors.append(exception)
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.deliveries(ids), [1] * 12)
        self.assertEqual(committed(outbox_states, ids), {'sent': 12})

    def test_marked_after_each_mail(self):
        """Each mail is marked sent as soon as the SMTP server accepted it:
        a run killed in a batch resends at most the mail in flight"""
        ids = committed(store_mails, 5, "Batch")
        handler = self.smtp.handler
        seen = []
        original = type(handler).handle_DATA

        async def handle_DATA(server, session, envelope):
            # what another process sees while this mail is being accepted
            seen.append(committed(outbox_states, ids))
            return await original(handler, server, session, envelope)
        handler.handle_DATA = handle_DATA
        try:
            committed(lambda: Pool().get('forfait.outbox').send_pending())
        finally:
            del handler.handle_DATA
        self.assertEqual(seen, [
                Counter(sending=1, sent=i, pending=4 - i) for i in range(5)])
        self.assertEqual(self.deliveries(ids), [1] * 5)

    def test_stale_claim(self):
        """A mail left claimed by a killed run is sent again after the
        claim timeout, a mail claimed recently is left to its run"""
        ids = committed(store_mails, 2, "Stale")
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

        def claim():
            Outbox = Pool().get('forfait.outbox')
            timeout = Outbox.claim_timeout()
            Outbox.write(Outbox.browse(ids[:1]), {
                    'state': 'sending', 'claimed_at': now - 2 * timeout})
            Outbox.write(Outbox.browse(ids[1:]), {
                    'state': 'sending', 'claimed_at': now})
        committed(claim)
        committed(lambda: Pool().get('forfait.outbox').send_pending())
        self.assertEqual(self.deliveries(ids), [1, 0])

        def check():
            Outbox = Pool().get('forfait.outbox')
            first, second = Outbox.browse(ids)
            self.assertEqual((first.state, second.state), ('sent', 'sending'))
            self.assertEqual(first.error, None)
        committed(check)


class InputBoundsTestCase(DatabaseTestCase):
    "Bad input answers a translated message naming the field"

    def assertMessage(self, message, call, **params):
        "Assert call() raises message of the module, showing params"
        with self.assertRaises(ForfaitValidationError) as cm:
            call()
        template = gettext('webservice_forfait.' + message)
        pattern = '.+'.join(
            re.escape(p) for p in re.split(r'%\(\w+\)s', template))
        self.assertRegex(cm.exception.message, '^%s$' % pattern)
        for value in params.values():
            self.assertIn(value, cm.exception.message)
        return cm.exception.message

    @with_transaction()
    def test_request_texts(self):
        pool = Pool()
        Request = pool.get('forfait.request')
        Config = pool.get('forfait.configuration')
        company, employee, first, second, request = set_up_ledger()
        with set_company(company):
            def create(**values):
                return Request.create([{
                            'party': first.id, 'company': company.id,
                            'subject': "Photo", **values}])
            self.assertMessage(
                'msg_value_nul', lambda: create(subject="Pho\x00to"),
                field="Subject")
            self.assertMessage(
                'msg_value_nul', lambda: create(description="a\x00b"),
                field="Description")
            self.assertMessage(
                'msg_value_too_long', lambda: create(subject="x" * 1001),
                field="Subject", length="1001", maximum="1000")
            self.assertMessage(
                'msg_value_too_long',
                lambda: create(description="mot" * 40_000),
                field="Description", maximum="100000")
            self.assertMessage(
                'msg_value_date', lambda: create(request_date='2026-13-01'),
                field="Request Date", value='2026-13-01')
            draft, = create(description="mot " * 20_000)
            self.assertMessage(
                'msg_value_date', lambda: Request.write(
                    [draft], {'request_date': '2026-02-30'}),
                field="Request Date")
            config = Config(1)
            config.max_subject_length = 10
            config.save()
            self.assertMessage(
                'msg_value_too_long', lambda: Request.write(
                    [draft], {'subject': "Onze lettr."}), maximum="10")
            Request.write([draft], {'subject': "Dix lettre"})
            self.assertEqual(draft.subject, "Dix lettre")

    @with_transaction()
    def test_timesheet_lines(self):
        pool = Pool()
        Request = pool.get('forfait.request')
        Line = pool.get('timesheet.line')
        Config = pool.get('forfait.configuration')
        company, employee, first, second, done = set_up_ledger()
        with set_company(company):
            request, = Request.create([{
                        'party': first.id, 'company': company.id,
                        'subject': "Menu"}])
            Request.open([request])

            def log(duration, **values):
                return Line.create([dict(
                            forfait_request=request.id,
                            employee=employee.id, company=company.id,
                            duration=duration, **values)])
            # -1:00, not "-1 day, 23:00:00"
            message = self.assertMessage(
                'msg_line_duration_negative', lambda: log(-HOUR),
                duration='-1:00')
            self.assertNotIn('day', message)
            self.assertMessage(
                'msg_line_duration_max', lambda: log(10_000 * HOUR),
                duration='10000:00', maximum='24:00')
            self.assertMessage(
                'msg_value_nul', lambda: log(HOUR, description="a\x00b"),
                field="Description")
            # a zero line is named by its request, date, employee, time
            message = self.assertMessage(
                'msg_line_duration_positive', lambda: log(dt.timedelta()))
            self.assertIn(request.number, message)
            self.assertIn('0:00', message)
            self.assertNotRegex(message, r'"\(\d+\)"')
            config = Config(1)
            config.max_line_duration = 2 * HOUR
            config.save()
            self.assertMessage(
                'msg_line_duration_max', lambda: log(3 * HOUR),
                maximum='2:00')
            line, = log(2 * HOUR)
            self.assertEqual(request.time_spent, 2 * HOUR)
            self.assertMessage(
                'msg_line_duration_max', lambda: Line.write([line], {
                        'duration': 2 * HOUR + dt.timedelta(minutes=1)}))

    @with_transaction()
    def test_configuration_durations(self):
        "A negative duration in the configuration shows as -h:mm"
        Config = Pool().get('forfait.configuration')
        config = Config(1)
        for name, field in [
                ('rounding_minimum', "Minimum per Request"),
                ('carry_over_max', "Carry-over"),
                ('max_line_duration', "Maximum Duration per Line")]:
            with self.subTest(name=name):
                message = self.assertMessage(
                    'msg_value_duration_negative',
                    lambda: Config.write([config], {name: -HOUR}),
                    field=field, duration='-1:00')
                self.assertNotIn('day', message)


class StuckWorkTestCase(RouteTestCase):
    "Received mail whose task was lost is processed once, by the cron"
    module = 'webservice_forfait'

    @classmethod
    def setUpClass(cls):
        use_smtp_server(cls)
        super().setUpClass()

    @classmethod
    def setUpDatabase(cls):
        # the module, not the class: pytest would run its tests here again
        test_inbound_email.InboundEmailTestCase.setUpDatabase()

    def test_orphaned_received(self):
        data = (
            b'From: Lucette Marie <lucette.marie@chezlucette.mq>\r\n'
            b'To: update@webservice.mq\r\n'
            b'Subject: Photo du menu\r\n'
            b'Message-ID: <orphan-1@chezlucette.mq>\r\n'
            b'\r\nBonjour, la nouvelle photo du menu.\r\n')

        def store():
            # what a worker killed in its task leaves: received, no task
            pool = Pool()
            Email = pool.get('inbound.email')
            Inbox = pool.get('inbound.email.inbox')
            inbox, = Inbox.search([('identifier', '=', IDENTIFIER)])
            email_, fresh = Email.create([{
                        'inbox': inbox.id, 'data': data,
                        'data_type': 'raw', 'forfait_state': 'received'}
                    for _ in range(2)])
            table = Email.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.update(
                    [table.create_date],
                    [dt.datetime.now() - 2 * Email.forfait_stale_delay()],
                    where=table.id == email_.id))
            return email_.id, fresh.id
        stale_id, fresh_id = committed(store)

        def requests():
            Request = Pool().get('forfait.request')
            return len(Request.search([('subject', '=', "Photo du menu")]))

        def state(email_id):
            return Pool().get('inbound.email')(email_id).forfait_state

        processed = committed(
            lambda: Pool().get('inbound.email').forfait_process_stale())
        self.assertEqual(processed, [stale_id])
        self.assertEqual(committed(state, stale_id), 'processed')
        # a recent one is left to its task
        self.assertEqual(committed(state, fresh_id), 'received')
        self.assertEqual(committed(requests), 1)

        # the lost task run at last, or twice, does nothing more
        def process_again():
            Email = Pool().get('inbound.email')
            Email.forfait_process([Email(stale_id)])
            Email.forfait_process([Email(stale_id)])
        committed(process_again)
        self.assertEqual(committed(state, stale_id), 'processed')
        self.assertEqual(committed(requests), 1)


class BreakableTestCase(unittest.TestCase):
    "Very long words get break opportunities, so rendering stays linear"

    def test_breakable(self):
        from ..report import BREAK_EVERY, breakable
        word = 'x' * 100_000
        text = breakable("Voir %s ici" % word)
        self.assertEqual(text.replace('\u200b', ''), "Voir %s ici" % word)
        self.assertEqual(text.count('\u200b'), 100_000 // BREAK_EVERY - 1)
        self.assertTrue(all(
                len(p) <= BREAK_EVERY
                for p in text.split(' ')[1].split('\u200b')))
        ordinary = "Mettre à jour https://www.chezlucette.mq/menu-du-jour"
        self.assertEqual(breakable(ordinary), ordinary)
        self.assertEqual(breakable(None), '')
