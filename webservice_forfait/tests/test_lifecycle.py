"The life of a forfait over the years: renewal, upgrade, expiry, commitment"
import datetime as dt

from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import with_transaction
from webservice_forfait.subscription import contract_years

from .database import DatabaseTestCase

HOUR = dt.timedelta(hours=1)


class LifecycleTestCase(DatabaseTestCase):
    "Forfait lifecycle"

    def subscribe(self, party, forfait, start, quantity=1):
        pool = Pool()
        Subscription = pool.get('sale.subscription')
        ModelData = pool.get('ir.model.data')
        Service = pool.get('sale.subscription.service')
        RuleSet = pool.get('sale.subscription.recurrence.rule.set')
        service = Service(ModelData.get_id(
                'webservice_forfait', 'service_forfait_%s' % forfait))
        subscription = Subscription(
            party=party, start_date=start,
            invoice_recurrence=RuleSet(ModelData.get_id(
                    'webservice_forfait', 'recurrence_yearly')),
            lines=[{
                    'service': service, 'quantity': quantity,
                    'start_date': start, 'unit': service.product.default_uom,
                    }])
        subscription.on_change_party()
        subscription.save()
        Subscription.quote([subscription])
        Subscription.run([subscription])
        return subscription

    def credits(self, party):
        Credit = Pool().get('forfait.credit')
        return [
            (c.start_date, c.end_date, c.hours) for c in Credit.search(
                [('party', '=', party.id)], order=[('start_date', 'ASC')])]

    @with_transaction()
    def test_two_years(self):
        "Renewed once a year by the cron, whatever how often it runs"
        pool = Pool()
        Party = pool.get('party.party')
        Subscription = pool.get('sale.subscription')
        Credit = pool.get('forfait.credit')
        company = create_company()
        with set_company(company):
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Boulangerie Chez Lucette")
            party.save()
            start = today - dt.timedelta(days=10)
            self.subscribe(party, '2h', start)
            anniversary = start.replace(year=start.year + 1)
            self.assertEqual(self.credits(party), [
                    (start, anniversary - dt.timedelta(1), 24 * HOUR)])

            for _ in range(2):
                Subscription.renew_forfait_credits(date=today)
            self.assertEqual(len(self.credits(party)), 1)
            for _ in range(2):
                Subscription.renew_forfait_credits(date=anniversary)
            self.assertEqual(self.credits(party), [
                    (start, anniversary - dt.timedelta(1), 24 * HOUR),
                    (anniversary,
                        anniversary.replace(year=anniversary.year + 1)
                        - dt.timedelta(1), 24 * HOUR)])

            first, second = Credit.search(
                [('party', '=', party.id)], order=[('start_date', 'ASC')])
            for _ in range(2):
                Credit.expire(date=anniversary)
            first, second = Credit.browse([first, second])
            self.assertEqual(first.state, 'expired')
            self.assertEqual(first.expired_hours, 24 * HOUR)
            self.assertEqual(second.state, 'open')
            self.assertEqual(second.expired_hours, dt.timedelta(0))
            self.assertEqual(
                Credit.usable([party], company, anniversary), [second])

            Timeline = pool.get('forfait.timeline')
            events = Timeline.search(
                [('party', '=', party.id)], order=[('date', 'ASC')])
            self.assertEqual(
                sorted(e.event for e in events),
                ['credit', 'credit', 'expiry', 'expiry', 'subscription'])
            self.assertEqual(
                {e.document for e in events if e.event == 'credit'},
                {first, second})

    @with_transaction()
    def test_upgrade_at_renewal(self):
        "The next year follows the new forfait, this year is untouched"
        pool = Pool()
        Party = pool.get('party.party')
        Subscription = pool.get('sale.subscription')
        Line = pool.get('sale.subscription.line')
        ModelData = pool.get('ir.model.data')
        Service = pool.get('sale.subscription.service')
        company = create_company()
        with set_company(company):
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Hôtel Bakoua Plage")
            party.save()
            start = today - dt.timedelta(days=100)
            subscription = self.subscribe(party, '1h', start)
            anniversary = start.replace(year=start.year + 1)
            Subscription.draft([subscription])
            line, = subscription.lines
            line.end_date = anniversary - dt.timedelta(1)
            line.save()
            Line.create([{
                        'subscription': subscription.id,
                        'service': ModelData.get_id(
                            'webservice_forfait', 'service_forfait_3h'),
                        'quantity': 1, 'start_date': anniversary,
                        'unit': Service(ModelData.get_id(
                                'webservice_forfait',
                                'service_forfait_3h')).product.default_uom,
                        }])
            Subscription.quote([subscription])
            Subscription.run([subscription])
            Subscription.renew_forfait_credits(date=anniversary)
            self.assertEqual(
                [h for _, _, h in self.credits(party)],
                [12 * HOUR, 36 * HOUR])

    @with_transaction()
    def test_minimum_commitment(self):
        "A forfait cannot end before 12 months, and the message says when"
        pool = Pool()
        Party = pool.get('party.party')
        company = create_company()
        with set_company(company):
            party = Party(addresses=[{}], name="Garage Caraïbes")
            party.save()
            start = dt.date(2026, 1, 31)
            subscription = self.subscribe(party, '2h', start)
            subscription.end_date = dt.date(2026, 7, 31)
            with self.assertRaises(ValidationError) as error:
                subscription.save()
            self.assertIn('2027', str(error.exception))
            subscription.end_date = dt.date(2027, 1, 30)
            subscription.save()

    @with_transaction()
    def test_carry_over(self):
        "Up to the configured hours left go to next year's credit"
        pool = Pool()
        Party = pool.get('party.party')
        Subscription = pool.get('sale.subscription')
        Credit = pool.get('forfait.credit')
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            config = Config(1)
            config.carry_over_max = 5 * HOUR
            config.save()
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Habitation Bellevue")
            party.save()
            start = today - dt.timedelta(days=30)
            self.subscribe(party, '1h', start)
            anniversary = start.replace(year=start.year + 1)
            Subscription.renew_forfait_credits(date=anniversary)
            Credit.expire(date=anniversary)
            first, second = Credit.search(
                [('party', '=', party.id)], order=[('start_date', 'ASC')])
            self.assertEqual(second.carried_over, 5 * HOUR)
            self.assertEqual(second.hours, 17 * HOUR)
            self.assertEqual(second.carried_from, first)
            self.assertEqual(first.expired_hours, 7 * HOUR)

    @with_transaction()
    def test_block_policy(self):
        "Without hours a request waits, and opens with the next credit"
        pool = Pool()
        Party = pool.get('party.party')
        Request = pool.get('forfait.request')
        Credit = pool.get('forfait.credit')
        Config = pool.get('forfait.configuration')
        company = create_company()
        with set_company(company):
            config = Config(1)
            config.overage_policy = 'block'
            config.save()
            party = Party(name="Madinina Kayak")
            party.save()
            request, override = Request.create([
                    {'party': party.id, 'subject': "Photos"},
                    {'party': party.id, 'subject': "Urgent"}])
            Request.open([request, override])
            self.assertEqual(
                [request.state, override.state], ['waiting', 'waiting'])
            Request.open([override])
            self.assertEqual(override.state, 'open')
            today = pool.get('ir.date').today()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': 12 * HOUR, 'reason': "Nouveau forfait",
                        'start_date': today,
                        'end_date': today + dt.timedelta(364)}])
            self.assertEqual(Request(request.id).state, 'open')

    @with_transaction()
    def test_new_forfait_mid_year(self):
        "A second subscription credits its own year; the first ends first"
        pool = Pool()
        Party = pool.get('party.party')
        Credit = pool.get('forfait.credit')
        company = create_company()
        with set_company(company):
            today = pool.get('ir.date').today()
            party = Party(addresses=[{}], name="Cabinet infirmier")
            party.save()
            self.subscribe(party, '1h', today - dt.timedelta(days=200))
            self.subscribe(party, '2h', today)
            first, second = Credit.usable([party], company, today)
            self.assertEqual(
                (first.hours, second.hours), (12 * HOUR, 24 * HOUR))
            self.assertLess(first.end_date, second.end_date)
            self.assertEqual(second.start_date, today)

    def test_contract_years(self):
        "Leap days and month ends start the right contract years"
        self.assertEqual(
            list(contract_years(dt.date(2024, 2, 29), dt.date(2026, 3, 1))),
            [dt.date(2024, 2, 29), dt.date(2025, 3, 1), dt.date(2026, 3, 1)])
        self.assertEqual(
            list(contract_years(dt.date(2026, 1, 31), dt.date(2027, 1, 31))),
            [dt.date(2026, 1, 31), dt.date(2027, 1, 31)])
