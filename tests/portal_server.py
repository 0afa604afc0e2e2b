"""Serve the portal of a fresh database with one client, for a browser.

Run as a program with DB_NAME (a file database on SQLite) set; prints
"READY <port>" once the server listens, then serves until killed."""
import datetime as dt
import os
import sys

from werkzeug.serving import make_server

import trytond.config as config
from trytond.modules.company.tests import (
    create_company, create_employee, set_company)
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction
from trytond.wsgi import app
from webservice_forfait.tests.smtp_server import SMTPServer
from webservice_forfait.tests.test_portal import (
    HOUR, PASSWORD, close_request, create_client, in_company, load_french,
    pack_invoices, set_prices)

EMAIL = 'lucette@chezlucette.mq'
# A client who used an hour more than its forfait
OVERDRAFT_EMAIL = 'salon@kreyol.mq'


def set_up(port):
    with Transaction().start(DB_NAME, 0) as transaction:
        pool = Pool()
        Config = pool.get('forfait.configuration')
        load_french()
        company = create_company("Web Service")
        with set_company(company):
            create_employee(company, "Marie-Line Joseph")
            config = Config(1)
            config.email_sender = 'Web Service <update@webservice.mq>'
            config.portal_url = 'http://127.0.0.1:%s/%s/portal' % (
                port, DB_NAME)
            config.save()
        transaction.commit()
    in_company(set_prices)
    party = create_client("Boulangerie Chez Lucette", EMAIL, hours=24)
    for subject, duration in [
            ("Horaires de Noël", 2 * HOUR),
            ("Photos des gâteaux de fête", 3 * HOUR + 30 * dt.timedelta(
                    minutes=1)),
            ("Nouveau tarif des viennoiseries", HOUR)]:
        close_request(party, duration, subject=subject)

    def open_request():
        Request = Pool().get('forfait.request')
        request, = Request.create([{
                    'party': party, 'subject': "Page recrutement",
                    'category': 'content',
                    'description': "Ajouter l'offre de vendeuse."}])
        Request.open([request])
    in_company(open_request)
    # a posted invoice (of a pack) for the forfaits page
    pack_invoices(party)

    salon = create_client("Salon Kréyol", OVERDRAFT_EMAIL, hours=2)
    close_request(salon, 3 * HOUR, subject="Photos du salon")


def main():
    smtp = SMTPServer().start()
    if not config.has_section('email'):
        config.add_section('email')
    config.set('email', 'uri', smtp.uri)
    drop_db()
    activate_module(['webservice_forfait'])
    server = make_server('127.0.0.1', 0, app, threaded=False)
    set_up(server.server_port)
    print('READY %s %s %s %s' % (
            server.server_port, EMAIL, PASSWORD, OVERDRAFT_EMAIL), flush=True)
    try:
        server.serve_forever()
    finally:
        drop_db()
        smtp.stop()


if __name__ == '__main__':
    if not os.environ.get('DB_NAME'):
        sys.exit("Set DB_NAME to a database the server may create")
    main()
