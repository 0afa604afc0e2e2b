"""Serve the web client (sao) and a fresh database with a staff user, for a
browser.

Run as a program with DB_NAME (a file database on SQLite) set and
TRYTOND_WEB__ROOT naming sao's folder; prints "READY <port> <login>
<password>" once the server listens, then serves until killed. The SMTP
server the configuration names is down: replies stay in the outbox."""
import datetime as dt
import os
import sys

from werkzeug.serving import make_server

import trytond.config as config
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction
from trytond.wsgi import app
from webservice_forfait.tests.smtp_server import free_port
from webservice_forfait.tests.test_portal import load_french

LOGIN = 'marie-line'
PASSWORD = 'Zouk-Love-1985'
HOUR = dt.timedelta(hours=1)


def set_up():
    with Transaction().start(DB_NAME, 0) as transaction:
        pool = Pool()
        Config = pool.get('forfait.configuration')
        Credit = pool.get('forfait.credit')
        Employee = pool.get('company.employee')
        Lang = pool.get('ir.lang')
        ModelData = pool.get('ir.model.data')
        Party = pool.get('party.party')
        Request = pool.get('forfait.request')
        User = pool.get('res.user')
        load_french()
        french, = Lang.search([('code', '=', 'fr')])
        company = create_company("Web Service")
        group = ModelData.get_id('webservice_forfait', 'group_forfait')
        with set_company(company):
            users = {}
            for login, name in [
                    (LOGIN, "Marie-Line Joseph"),
                    ('jean-marc', "Jean-Marc Célestine")]:
                employee = Employee(
                    party=Party(name=name), company=company)
                employee.party.save()
                employee.save()
                user = User(
                    login=login, name=name, password=PASSWORD,
                    email='%s@webservice.mq' % login, language=french,
                    groups=[group], companies=[company], company=company,
                    employees=[employee], employee=employee)
                user.save()
                users[login] = user
            config_ = Config(1)
            config_.email_sender = 'Web Service <update@webservice.mq>'
            config_.portal_url = 'https://portail.webservice.mq'
            config_.assignment_rule = 'none'
            config_.save()
            party = Party(name="Boulangerie Chez Lucette", lang=french,
                contact_mechanisms=[{
                        'type': 'email',
                        'value': 'lucette@chezlucette.mq'}])
            party.save()
            today = pool.get('ir.date').today()
            Credit.create([{
                        'party': party.id, 'company': company.id,
                        'hours': 24 * HOUR, 'start_date': today,
                        'end_date': today + dt.timedelta(days=364),
                        'reason': "Forfait 2 h"}])
            requests = Request.create([{
                        'party': party.id, 'subject': subject,
                        'category': 'content', 'assignee': (
                            users[assignee].id if assignee else None),
                        'description': description}
                    for subject, assignee, description in [
                        ("Photos des gâteaux de fête", LOGIN,
                            "Remplacer les photos de la page Fêtes."),
                        ("Horaires de Noël", 'jean-marc',
                            "Ouvert le 24 jusqu'à 20 h."),
                        ("Page recrutement", None,
                            "Ajouter l'offre de vendeuse."),
                        ]])
            Request.open(requests)
            # the client asked a question in the portal
            client = type('WebUser', (), {'email': 'lucette@chezlucette.mq'})
            requests[0].post_from_portal(
                client, "Bonjour, avez-vous bien reçu les photos ?")
        transaction.commit()


def main():
    if not config.has_section('email'):
        config.add_section('email')
    # nothing listens there: the replies stay pending in the outbox
    config.set('email', 'uri', 'smtp://127.0.0.1:%s' % free_port())
    drop_db()
    activate_module(['webservice_forfait'])
    server = make_server('127.0.0.1', 0, app, threaded=True)
    set_up()
    print('READY %s %s %s' % (server.server_port, LOGIN, PASSWORD),
        flush=True)
    try:
        server.serve_forever()
    finally:
        drop_db()


if __name__ == '__main__':
    if not os.environ.get('DB_NAME'):
        sys.exit("Set DB_NAME to a database the server may create")
    if not os.environ.get('TRYTOND_WEB__ROOT'):
        sys.exit("Set TRYTOND_WEB__ROOT to sao's folder")
    main()
