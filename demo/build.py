"""Fill a fresh webservice_forfait database with French demo data

Usage: build.py -c trytond.conf -d DATABASE

The database must already exist with webservice_forfait and account_fr
activated and French loaded
(trytond-admin ... -u webservice_forfait account_fr -l fr).
"""
import argparse
import configparser
import datetime
import time
import urllib.parse
from collections import Counter
from decimal import Decimal

from proteus import Model, Wizard, config
from webservice_forfait.ledger import format_duration as fmt


def hm(value):
    "Return the timedelta of an 'h:mm' string"
    hours, minutes = value.split(':')
    return datetime.timedelta(hours=int(hours), minutes=int(minutes))


def ref(xml_id, module='webservice_forfait'):
    "Return the id of a record shipped by module"
    ModelData = Model.get('ir.model.data')
    return ModelData.get_id(module, xml_id, {})


def d(month, day, year=2026):
    return datetime.date(year, month, day)


# Clients: name, street, postal code, city, e-mails,
# forfait ('1h', '2h', '3h' or None) and subscription start date.
CLIENTS = [
    ('lucette', "Boulangerie Chez Lucette", "12 rue Schœlcher", '97232',
        "Le Lamentin",
        ['lucette.marie@chezlucette.mq', 'commandes@chezlucette.mq'],
        '1h', d(1, 15)),
    ('bakoua', "Hôtel Bakoua Plage", "Pointe du Bout", '97229',
        "Les Trois-Îlets",
        ['direction@bakoua-plage.mq', 'reservations@bakoua-plage.mq'],
        '3h', d(3, 1)),
    ('bellevue', "Habitation Bellevue – Rhum agricole",
        "Quartier Bellevue", '97230', "Sainte-Marie",
        ['contact@habitation-bellevue.mq'],
        '2h', d(5, 4)),
    ('infirmier', "Cabinet infirmier du Diamant", "8 place de l'Église",
        '97223', "Le Diamant",
        ['cabinet.diamant@orange.mq'],
        '1h', d(7, 1)),
    ('kayak', "Madinina Kayak Aventure", "Boulevard de la Mer", '97231',
        "Le Robert",
        ['hello@madinina-kayak.mq', 'jeremie@madinina-kayak.mq'],
        '2h', d(9, 14)),
    ('bele', "Association Bèlè Nou Kontan", "Rue des Pêcheurs", '97227',
        "Sainte-Anne",
        ['asso.belenoukontan@gmail.com'],
        None, None),
    ]

PORTAL_URL = 'http://127.0.0.1:8000/demo/portal'
PORTAL_PASSWORD = 'Madinina-972'
PRICES = {'1h': Decimal('600'), '2h': Decimal('1100'), '3h': Decimal('1500')}

# Fiscal years of the demo (the subscriptions start in 2026)
FISCAL_YEARS = [2026, 2027]

# Employees: 0 = Marie-Line Joseph, 1 = Kévin Célestine
EMPLOYEES = ["Marie-Line Joseph", "Kévin Célestine"]

# Requests: client, subject, description, category, channel, request date,
# final state and timesheet lines
# (employee, date, 'h:mm', description, billable).
REQUESTS = [
    # Boulangerie Chez Lucette: 1 h/month, more than 12 h done: overdraft
    ('lucette', "Nouvelle carte des viennoiseries",
        "Bonjour, nous avons de nouveaux produits : pain au coco, "
        "sacristains goyave et tourments d'amour. Merci de mettre la carte "
        "à jour avec les prix joints.",
        'content', 'email', d(2, 3), 'done', [
            (0, d(2, 4), '1:40', "Saisie des nouveaux produits et des prix",
                True),
            (0, d(2, 5), '1:30', "Mise en page de la carte, relecture",
                True),
            ]),
    ('lucette', "Photos des gâteaux de Pâques",
        "Pouvez-vous intégrer les photos des gâteaux de Pâques dans la "
        "galerie ? Les fichiers sont en pièce jointe.",
        'illustrations', 'email', d(3, 20), 'done', [
            (1, d(3, 23), '1:15', "Retouche et recadrage des photos", True),
            (1, d(3, 23), '1:15', "Intégration dans la galerie", True),
            ]),
    ('lucette', "Bannière animée pour la fête des mères",
        "Une bannière animée sur la page d'accueil pour annoncer les "
        "commandes de gâteaux de la fête des mères (31 mai).",
        'animations', 'portal', d(5, 6), 'done', [
            (1, d(5, 7), '2:00', "Maquette de la bannière", True),
            (1, d(5, 11), '2:00', "Animation et intégration", True),
            (0, d(5, 11), '0:20', "Vérification sur mobile", False),
            ]),
    ('lucette', "Créneaux de retrait pour la commande en ligne",
        "Les clients doivent pouvoir choisir un créneau de retrait "
        "(7 h - 12 h) quand ils commandent en ligne.",
        'features', 'staff', d(9, 2), 'done', [
            (0, d(9, 3), '2:00', "Paramétrage du module de réservation",
                True),
            (0, d(9, 4), '1:20', "Tests de commande et corrections", True),
            (0, d(9, 4), '0:30', "Explications au téléphone",
                False),
            ]),
    ('lucette', "Horaires d'ouverture des fêtes de fin d'année",
        "Merci d'afficher les horaires exceptionnels du 24 décembre au "
        "2 janvier.",
        'information', 'email', d(11, 23), 'open', [
            (0, d(11, 24), '0:40', "Mise à jour de la page Horaires", True),
            ]),

    # Hôtel Bakoua Plage: 3 h/month
    ('bakoua', "Refonte de la page Chambres",
        "Nous souhaitons une présentation plus aérée des chambres : "
        "une photo large par catégorie et les équipements en pictogrammes.",
        'layout', 'email', d(3, 10), 'done', [
            (1, d(3, 11), '3:00', "Nouvelle maquette de la page Chambres",
                True),
            (1, d(3, 12), '2:30', "Intégration et pictogrammes", True),
            ]),
    ('bakoua', "Newsletter de la saison cyclonique",
        "Envoi de la newsletter « Offres de l'été » à nos clients fidèles, "
        "avec le code promo ETE2026.",
        'newsletter', 'portal', d(6, 2), 'done', [
            (0, d(6, 3), '1:50', "Rédaction et mise en forme", True),
            (0, d(6, 4), '0:20', "Envoi et contrôle des rebonds", True),
            ]),
    ('bakoua', "Traduction anglaise du menu du restaurant",
        "Le menu du restaurant Le Chateaubriand doit être disponible en "
        "anglais pour la clientèle nord-américaine.",
        'content', 'email', d(10, 12), 'done', [
            (1, d(10, 13), '2:10', "Traduction et intégration du menu",
                True),
            ]),
    ('bakoua', "Vidéo de fond sur la page d'accueil",
        "Remplacer l'image d'accueil par la vidéo drone de la plage.",
        'animations', 'staff', d(11, 16), 'open', [
            (1, d(11, 17), '1:30', "Compression de la vidéo", True),
            (1, d(11, 20), '0:45', "Intégration, image de repli mobile",
                True),
            ]),
    ('bakoua', "Formulaire de réservation de l'excursion catamaran",
        "Ajouter l'excursion en catamaran du samedi au formulaire "
        "d'activités.",
        'features', 'portal', d(11, 25), 'draft', []),

    # Habitation Bellevue: 2 h/month
    ('bellevue', "Photos de la nouvelle cuvée",
        "Intégrer les photos de la cuvée « Vieux 8 ans » dans la boutique.",
        'illustrations', 'email', d(6, 18), 'done', [
            (1, d(6, 19), '1:05', "Détourage des bouteilles", True),
            (1, d(6, 19), '0:25', "Mise en ligne dans la boutique", True),
            ]),
    ('bellevue', "Horaires de visite de la distillerie",
        "Nouveaux horaires de visite à partir du 1er septembre : "
        "du mardi au samedi, 9 h - 16 h.",
        'information', 'staff', d(8, 28), 'done', [
            (0, d(8, 28), '0:10', "Mise à jour des horaires", True),
            ]),
    ('bellevue', "Page du festival du rhum",
        "Créer une page pour le festival du rhum de décembre, "
        "avec le programme et la billetterie.",
        'layout', 'email', d(11, 18), 'open', [
            (0, d(11, 19), '1:15', "Structure de la page et programme",
                True),
            ]),
    ('bellevue', "Changer le logo du pied de page",
        "Finalement nous gardons l'ancien logo, merci d'annuler.",
        'layout', 'email', d(9, 30), 'cancelled', []),

    # Cabinet infirmier du Diamant: 1 h/month
    ('infirmier', "Permanence du mois d'août",
        "Indiquer sur le site que le cabinet assure une permanence le "
        "matin uniquement pendant le mois d'août.",
        'information', 'email', d(7, 24), 'done', [
            (0, d(7, 24), '0:20', "Bandeau d'information sur l'accueil",
                True),
            ]),
    ('infirmier', "Campagne de vaccination contre la grippe",
        "Ajouter un article sur la campagne de vaccination 2026-2027, "
        "avec les modalités de rendez-vous.",
        'content', 'portal', d(10, 20), 'done', [
            (1, d(10, 21), '0:50', "Rédaction et mise en ligne de l'article",
                True),
            ]),
    ('infirmier', "Prise de rendez-vous en ligne",
        "Est-il possible d'ajouter un agenda de prise de rendez-vous ?",
        'features', 'email', d(11, 24), 'draft', []),

    # Madinina Kayak Aventure: 2 h/month
    ('kayak', "Galerie photos des sorties en mangrove",
        "Nouvelles photos des sorties en mangrove et à l'îlet Madame.",
        'illustrations', 'portal', d(10, 1), 'done', [
            (1, d(10, 2), '1:00', "Sélection et optimisation des photos",
                True),
            (1, d(10, 2), '0:40', "Création de la galerie", True),
            ]),
    ('kayak', "Tarifs de la saison haute",
        "Mettre à jour les tarifs à partir du 15 décembre (location à la "
        "demi-journée : 35 €).",
        'information', 'email', d(11, 20), 'open', [
            (0, d(11, 23), '0:15', "Mise à jour de la grille tarifaire",
                True),
            ]),
    ('kayak', "Newsletter de Noël",
        "Envoyer une newsletter pour les bons cadeaux de Noël.",
        'newsletter', 'email', d(11, 26), 'draft', []),
    ('kayak', "Bouton WhatsApp",
        "Demande faite en double par téléphone, déjà traitée.",
        'other', 'staff', d(10, 8), 'cancelled', []),

    # Association Bèlè Nou Kontan: manual credit
    ('bele', "Affiche de la swaré bèlè",
        "Publier l'affiche de la swaré bèlè du 12 décembre sur la page "
        "Agenda, avec un lien vers l'événement.",
        'other', 'email', d(11, 10), 'done', [
            (0, d(11, 12), '0:35', "Publication de l'affiche dans l'agenda",
                True),
            ]),
    ]


def setup_company():
    "Create the company, its employees and configure the admin user"
    Country = Model.get('country.country')
    Currency = Model.get('currency.currency')
    CurrencyRate = Model.get('currency.currency.rate')
    Employee = Model.get('company.employee')
    Lang = Model.get('ir.lang')
    Party = Model.get('party.party')
    User = Model.get('res.user')

    french, = Lang.find([('code', '=', 'fr')])
    countries = Country.find([('code', '=', 'MQ')])
    if countries:
        martinique, = countries
    else:
        martinique = Country(
            name="Martinique", code='MQ', code3='MTQ', code_numeric='474')
        martinique.save()

    currencies = Currency.find([('code', '=', 'EUR')])
    if currencies:
        eur, = currencies
    else:
        eur = Currency(
            name="Euro", symbol='€', code='EUR', numeric_code='978',
            rounding=Decimal('0.01'))
        eur.save()
        CurrencyRate(
            date=datetime.date.min, rate=Decimal('1'), currency=eur).save()

    party = Party(name="Web Service", lang=french)
    address, = party.addresses
    address.street = "25 rue Victor Hugo"
    address.postal_code = '97200'
    address.city = "Fort-de-France"
    address.country = martinique
    party.contact_mechanisms.new(type='email', value='contact@webservice.mq')
    party.contact_mechanisms.new(type='email', value='update@webservice.mq')
    party.save()

    company_config = Wizard('company.company.config')
    company_config.execute('company')
    company = company_config.form
    company.party = party
    company.currency = eur
    company.timezone = 'America/Martinique'
    company_config.execute('add')

    Company = Model.get('company.company')
    company, = Company.find([])

    employees = []
    for name in EMPLOYEES:
        employee_party = Party(name=name, lang=french)
        employee_party.save()
        employee = Employee(
            party=employee_party, company=company,
            start_date=datetime.date(2020, 1, 1))
        employee.save()
        employees.append(employee)

    admin = User(config.get_config().user)
    admin.language = french
    if company not in admin.companies:
        admin.companies.append(company)
    admin.company = company
    admin.employees.extend(employees)
    admin.employee = employees[0]
    admin.save()
    config.get_config()._context = User.get_preferences(True, {})
    return company, employees, martinique, french


def create_chart(company):
    "Create the French chart of accounts (account_fr) of the company"
    Account = Model.get('account.account')
    AccountTemplate = Model.get('account.account.template')

    create_chart = Wizard('account.create_chart')
    create_chart.execute('account')
    create_chart.form.account_template = AccountTemplate(
        ref('root', 'account_fr'))
    create_chart.form.company = company
    create_chart.execute('create_account')

    def account(code):
        account, = Account.find([
                ('company', '=', company.id),
                ('code', '=', code),
                ])
        return account
    # Clients, fournisseurs, achats de prestations, prestations de services
    create_chart.form.account_receivable = account('4111')
    create_chart.form.account_payable = account('4011')
    create_chart.form.category_account_expense = account('604')
    create_chart.form.category_account_revenue = account('706')
    create_chart.execute('create_properties')
    return account


def create_fiscal_years(company):
    "Create the fiscal years with their periods and sequences"
    FiscalYear = Model.get('account.fiscalyear')
    SequenceStrict = Model.get('ir.sequence.strict')
    SequenceType = Model.get('ir.sequence.type')
    move_type = SequenceType(ref('sequence_type_account_move', 'account'))
    invoice_type = SequenceType(
        ref('sequence_type_account_invoice', 'account_invoice'))
    for year in FISCAL_YEARS:
        fiscalyear = FiscalYear(name=str(year), company=company)
        fiscalyear.start_date = datetime.date(year, 1, 1)
        fiscalyear.end_date = datetime.date(year, 12, 31)
        fiscalyear.move_sequence = SequenceStrict(
            name="Écritures %s" % year, sequence_type=move_type,
            company=company)
        fiscalyear.move_sequence.save()
        invoice_sequence = SequenceStrict(
            name="Factures %s" % year, sequence_type=invoice_type,
            company=company, prefix='FA%s-' % year, padding=4)
        invoice_sequence.save()
        sequences, = fiscalyear.invoice_sequences
        sequences.out_invoice_sequence = invoice_sequence
        sequences.out_credit_note_sequence = invoice_sequence
        sequences.in_invoice_sequence = invoice_sequence
        sequences.in_credit_note_sequence = invoice_sequence
        fiscalyear.save()
        fiscalyear.click('create_period')


def setup_accounting(company):
    """Create the French chart of accounts, the fiscal years, the payment
    term and the account category of the forfaits"""
    Configuration = Model.get('account.configuration')
    PaymentTerm = Model.get('account.invoice.payment_term')
    Category = Model.get('product.category')
    Tax = Model.get('account.tax')

    account = create_chart(company)
    create_fiscal_years(company)

    # "30 jours nets", shipped by account_invoice, for the new clients
    configuration = Configuration(1)
    configuration.default_customer_payment_term = PaymentTerm(
        ref('payment_term_net30', 'account_invoice'))
    configuration.save()

    # account_fr ships the 8.5 % VAT of the overseas departments
    # (Martinique, Guadeloupe, La Réunion)
    tax, = Tax.find([
            ('company', '=', company.id),
            ('template', '=', ref('tva_vente_services_8_5', 'account_fr')),
            ])
    category = Category(name="Forfaits de mise à jour")
    category.accounting = True
    category.account_revenue = account('706')
    category.customer_taxes.append(tax)
    category.save()
    return category


def set_prices(category):
    "Set the yearly price and the accounting of the shipped forfaits"
    Template = Model.get('product.template')
    Service = Model.get('sale.subscription.service')
    services = {}
    for key, price in PRICES.items():
        template = Template(ref('template_forfait_%s' % key))
        template.list_price = price
        template.account_category = category
        template.save()
        services[key] = Service(ref('service_forfait_%s' % key))
    return services


def create_clients(martinique, french):
    Party = Model.get('party.party')
    clients = {}
    for key, name, street, postal_code, city, emails, _, _ in CLIENTS:
        party = Party(name=name, lang=french)
        address, = party.addresses
        address.street = street
        address.postal_code = postal_code
        address.city = city
        address.country = martinique
        for email in emails:
            party.contact_mechanisms.new(type='email', value=email)
        party.save()
        clients[key] = party
    return clients


def create_subscriptions(clients, services):
    "Subscribe the clients to their forfait and run the subscriptions"
    RuleSet = Model.get('sale.subscription.recurrence.rule.set')
    Subscription = Model.get('sale.subscription')
    yearly = RuleSet(ref('recurrence_yearly'))
    subscriptions = []
    for key, _, _, _, _, _, forfait, start_date in CLIENTS:
        if not forfait:
            continue
        subscription = Subscription()
        subscription.party = clients[key]
        subscription.start_date = start_date
        subscription.invoice_recurrence = yearly
        subscription.description = "Forfait de mise à jour du site"
        line = subscription.lines.new()
        line.service = services[forfait]
        line.quantity = 1
        subscription.save()
        subscription.click('quote')
        subscription.click('run')
        subscriptions.append(subscription)
    return subscriptions


def generate_invoices(date):
    """Generate the consumptions and invoices of the subscriptions up to date
    as sale_subscription's daily crons do, and post the invoices"""
    Invoice = Model.get('account.invoice')
    create_consumption = Wizard('sale.subscription.line.consumption.create')
    create_consumption.form.date = date
    create_consumption.execute('create_')
    create_invoice = Wizard('sale.subscription.create_invoice')
    create_invoice.form.date = date
    create_invoice.execute('create_')
    invoices = Invoice.find([
            ('type', '=', 'out'),
            ('state', '=', 'draft'),
            ], order=[('invoice_date', 'ASC'), ('id', 'ASC')])
    # Posted today, the invoices of past dates have payment dates in the
    # past: skip the warning the accountant would confirm.
    config.get_config().skip_warning = True
    try:
        Invoice.click(invoices, 'post')
    finally:
        config.get_config().skip_warning = False
    return invoices


def create_manual_credit(company, party):
    Credit = Model.get('forfait.credit')
    credit = Credit(
        company=company, party=party,
        start_date=d(11, 1), end_date=d(10, 31, 2027),
        hours=hm('5:00'),
        reason="Geste commercial : partenariat pour le festival bèlè")
    credit.save()
    return credit


def create_requests(clients, employees):
    Line = Model.get('timesheet.line')
    Request = Model.get('forfait.request')
    requests = []
    for (key, subject, description, category, channel, request_date,
            state, lines) in REQUESTS:
        request = Request()
        request.party = clients[key]
        request.subject = subject
        request.description = description
        request.category = category
        request.channel = channel
        request.request_date = request_date
        request.save()
        if state in {'open', 'done'}:
            request.click('open')
        for employee, date, duration, text, billable in lines:
            line = Line()
            line.employee = employees[employee]
            line.date = date
            line.duration = hm(duration)
            line.description = text
            line.billable = billable
            line.forfait_request = request
            line.save()
        if state == 'done':
            request.click('done')
        elif state == 'cancelled':
            request.click('cancel')
        requests.append(request)
    return requests


STATES = [
    ('draft', "brouillon"),
    ('open', "en cours"),
    ('done', "terminée"),
    ('cancelled', "annulée"),
    ]


def ledger_remaining(party):
    "Return the balance of party computed from its credits and overdraft"
    Consumption = Model.get('forfait.consumption')
    Date = Model.get('ir.date')
    today = Date.today({})
    remaining = sum((c.remaining for c in party.forfait_credits
            if c.start_date <= today <= c.end_date and c.state != 'expired'),
        datetime.timedelta())
    overdrafts = Consumption.find([
            ('party', '=', party.id),
            ('credit', '=', None),
            ])
    return remaining - sum(
        (c.duration for c in overdrafts), datetime.timedelta())


def print_summary(clients):
    Credit = Model.get('forfait.credit')
    Invoice = Model.get('account.invoice')
    Party = Model.get('party.party')
    Request = Model.get('forfait.request')

    print("Clients : %d" % len(clients))
    print("Factures :")
    invoices = Invoice.find([('type', '=', 'out')],
        order=[('number', 'ASC')])
    for invoice in invoices:
        print("  %-12s %s %-38s HT %9s  TVA %8s  TTC %9s  (%s)" % (
                invoice.number or '', invoice.invoice_date,
                invoice.party.name, invoice.untaxed_amount,
                invoice.tax_amount, invoice.total_amount, invoice.state))
    print("  %-63s HT %9s  TVA %8s  TTC %9s" % ("Total",
            sum(i.untaxed_amount for i in invoices),
            sum(i.tax_amount for i in invoices),
            sum(i.total_amount for i in invoices)))
    print("Crédits d'heures :")
    for credit in Credit.find([], order=[('party.name', 'ASC')]):
        print("  %-38s %s -> %s %6s  consommé %6s  reste %6s  (%s)" % (
                credit.party.name, credit.start_date, credit.end_date,
                fmt(credit.hours), fmt(credit.consumed),
                fmt(credit.remaining), credit.state))
    states = Counter(r.state for r in Request.find([]))
    print("Demandes : " + ", ".join(
            '%s %d' % (label, states[state]) for state, label in STATES))
    print("Heures restantes par client "
        "(fiche client / calculées sur le grand livre, en attente) :")
    for party in Party.find([('id', 'in', [c.id for c in clients.values()])],
            order=[('name', 'ASC')]):
        print("  %-38s %7s / %7s  %6s" % (
                party.name, fmt(party.forfait_remaining),
                fmt(ledger_remaining(party)), fmt(party.forfait_pending)))


def configure_email():
    "Set the agency's addresses and give the update inbox its URL"
    Config = Model.get('forfait.configuration')
    configuration = Config(1)
    configuration.email_sender = 'Web Service <update@webservice-mq.fr>'
    configuration.inbound_address = 'update@webservice-mq.fr'
    configuration.portal_url = PORTAL_URL
    configuration.save()
    inbox = configuration.inbound_inbox
    inbox.click('new_identifier')
    inbox.reload()
    print("Boîte de réception des demandes : %s" % inbox.endpoint)


def create_portal_accounts(clients):
    "Give the first address of each client a portal login"
    User = Model.get('web.user')
    for party in clients.values():
        user = User(email=party.contact_mechanisms[0].value, party=party)
        user.password = PORTAL_PASSWORD
        user.save()
    print("Portail client : %s  (ex. %s / %s)" % (
            PORTAL_URL, clients['lucette'].contact_mechanisms[0].value,
            PORTAL_PASSWORD))


def close_config_wizard():
    "Mark the set-up wizard done so the web client opens on the menu"
    Item = Model.get('ir.module.config_wizard.item')
    items = Item.find([('state', '!=', 'done')])
    for item in items:
        item.state = 'done'
    Item.save(items)


def database_uri(database, config_file):
    """Return the database as a URI on the server of the config file's
    [database] uri, which proteus reads only from the environment"""
    parser = configparser.ConfigParser()
    parser.read(config_file)
    uri = parser.get('database', 'uri', fallback='')
    if uri and not uri.startswith('sqlite'):
        return urllib.parse.urlunparse(
            urllib.parse.urlparse(uri)._replace(path='/' + database))
    return database


def main(database, config_file):
    start = time.monotonic()
    config.set_trytond(
        database=database_uri(database, config_file),
        config_file=config_file)
    close_config_wizard()
    company, employees, martinique, french = setup_company()
    category = setup_accounting(company)
    services = set_prices(category)
    clients = create_clients(martinique, french)
    create_subscriptions(clients, services)
    generate_invoices(Model.get('ir.date').today({}))
    create_manual_credit(company, clients['bele'])
    create_requests(clients, employees)
    configure_email()
    create_portal_accounts(clients)
    print_summary(clients)
    print("Données de démonstration créées en %.1f s"
        % (time.monotonic() - start))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-c', '--config', dest='config_file', required=True)
    parser.add_argument('-d', '--database', dest='database', required=True)
    args = parser.parse_args()
    main(args.database, args.config_file)
