"""The portal in a real headless Chromium, served by a real trytond server.

Set FORFAIT_SCREENSHOTS to a folder to keep a screenshot of every page at
desktop and phone width (`make screenshots` writes them into the docs)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import pytest

CHROMIUM = shutil.which('chromium')
CHROMEDRIVER = shutil.which('chromedriver')
HERE = os.path.dirname(__file__)
# axe-core from the project's package.json (make test installs it)
AXE = os.path.join(HERE, '..', 'node_modules', 'axe-core', 'axe.min.js')
AXE_RUN = '''
    const done = arguments[arguments.length - 1];
    axe.run(document, {resultTypes: ['violations']}).then(
        result => done(result.violations
            .filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => [v.id, v.impact, v.help,
                v.nodes.slice(0, 5).map(n => n.target.join(' '))])),
        error => done([['axe', 'error', String(error), []]]));
    '''
SIZES = {'desktop': (1280, 1000), 'phone': (390, 844)}
# The smallest valid PNG: one transparent pixel.
PIXEL = bytes.fromhex(
    '89504e470d0a1a0a0000000d4948445200000001000000010806000000'
    '1f15c4890000000d49444154789c6360000002000154a24f5d0000000049'
    '454e44ae426082')

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed")


class PortalBrowserTestCase(unittest.TestCase):
    "A client's visit: sign in, balance, request with a file, message, PDF"

    @classmethod
    def setUpClass(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        cls.folder = tempfile.mkdtemp()
        cls.addClassCleanup(shutil.rmtree, cls.folder)
        env = dict(os.environ)
        env['DB_NAME'] = env.get('DB_NAME', 'browser') + '_browser'
        if 'postgresql' not in env.get('TRYTOND_DATABASE__URI', ''):
            env['TRYTOND_DATABASE__URI'] = 'sqlite://'
            env['TRYTOND_DATABASE__PATH'] = cls.folder
        cls.server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'portal_server.py')],
            env=env, stdout=subprocess.PIPE, text=True)
        cls.addClassCleanup(cls.stop_server)
        line = cls.server.stdout.readline()
        if not line.startswith('READY'):
            raise RuntimeError("The portal server did not start: %r" % line)
        _, port, cls.email, cls.password, cls.overdraft_email = line.split()
        cls.database = env['DB_NAME']
        cls.database_uri = env['TRYTOND_DATABASE__URI']
        cls.base = 'http://127.0.0.1:%s/%s/portal/' % (port, env['DB_NAME'])

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ['--headless=new', '--no-sandbox',
                '--disable-dev-shm-usage', '--lang=fr-FR',
                '--window-size=%s,%s' % SIZES['desktop']]:
            options.add_argument(argument)
        cls.browser = webdriver.Chrome(
            service=Service(CHROMEDRIVER), options=options)
        cls.addClassCleanup(cls.browser.quit)
        cls.browser.implicitly_wait(5)
        cls.browser.set_script_timeout(60)
        cls.screenshots = os.environ.get('FORFAIT_SCREENSHOTS')

    @classmethod
    def stop_server(cls):
        cls.server.terminate()
        cls.server.wait(30)

    def find(self, selector):
        from selenium.webdriver.common.by import By
        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector):
        from selenium.webdriver.common.by import By
        return self.browser.find_elements(By.CSS_SELECTOR, selector)

    def click(self, selector, element=None):
        "Click and wait for the next page to be loaded"
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait
        self.browser.execute_script('window.leaving = true')

        def loaded(browser):
            # a new page has a new window object, without the mark
            return browser.execute_script(
                'return !window.leaving && document.readyState == "complete"')
        (element or self.find(selector)).click()
        WebDriverWait(self.browser, 30, ignored_exceptions=[
                WebDriverException]).until(loaded)

    def check_accessibility(self, name):
        "axe-core finds no serious or critical violation on the page"
        if not os.path.exists(AXE):
            self.fail("axe-core is missing: run npm install (make test does)")
        with open(AXE) as f:
            self.browser.execute_script(f.read())
        violations = self.browser.execute_async_script(AXE_RUN)
        self.assertEqual(violations, [], "axe-core on the page %s" % name)

    def shoot(self, name):
        """Check the page's accessibility and keep it at desktop and phone
        width when asked to"""
        self.check_accessibility(name)
        if not self.screenshots:
            return
        os.makedirs(self.screenshots, exist_ok=True)
        for size, (width, height) in SIZES.items():
            self.browser.set_window_size(width, height)
            height = self.browser.execute_script(
                'return document.documentElement.scrollHeight')
            self.browser.set_window_size(width, min(height + 140, 4000))
            self.browser.save_screenshot(os.path.join(
                    self.screenshots, 'portal_%s_%s.png' % (name, size)))
        self.browser.set_window_size(*SIZES['desktop'])

    def fetch(self, url):
        "Download url with the browser's cookies: status, type, first bytes"
        return self.browser.execute_async_script('''
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done([
                r.status, r.headers.get('Content-Type'),
                String.fromCharCode(...new Uint8Array(b.slice(0, 5)))])));
            ''', url)

    def query(self, sql, *params):
        "Read the server's database (SQLite file or PostgreSQL)"
        if self.database_uri.startswith('sqlite'):
            import sqlite3
            connection = sqlite3.connect(os.path.join(
                    self.folder, self.database + '.sqlite'))
            sql = sql.replace('%s', '?')
        else:
            import psycopg
            connection = psycopg.connect(
                self.database_uri.rstrip('/') + '/' + self.database)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def sign_in(self, email):
        self.browser.get(self.base + 'login')
        self.browser.delete_all_cookies()
        self.browser.get(self.base + 'login')
        self.find('#email').send_keys(email)
        self.find('#password').send_keys(self.password)
        self.click('main form button[type=submit]')

    def test_pack_in_overdraft(self):
        "A client in overdraft buys 5 h: overdraft taken, draft invoice"
        self.sign_in(self.overdraft_email)
        self.assertIn("1 h de plus que votre forfait",
            self.find('.alert.danger').text)
        self.click('.alert.danger a')
        self.assertTrue(self.browser.current_url.endswith('/subscribe#packs'))
        self.shoot('buy_hours')
        offer, = [o for o in self.find_all('#packs label.offer')
            if '5 h' in o.text]
        self.assertIn("360,00", offer.text)
        offer.find_element('css selector', 'input').click()
        self.click('#packs button[type=submit]')

        self.assertIn("Vos heures supplémentaires sont créditées",
            self.find('.notice').text)
        self.assertFalse(self.find_all('.alert.danger'))
        figures = self.find('.summary').text
        self.assertIn("4 h", figures)
        gauges = [g.text for g in self.find_all('.gauge h2')]
        self.assertEqual(len(gauges), 2)
        self.assertIn("Heures supplémentaires du", gauges[1])
        self.shoot('dashboard_pack')
        (state, party, code), = self.query(
            'SELECT i.state, p.name, t.name FROM account_invoice i '
            'JOIN party_party p ON p.id = i.party '
            'JOIN account_invoice_line l ON l.invoice = i.id '
            'JOIN product_product pp ON pp.id = l.product '
            'JOIN product_template t ON t.id = pp.template '
            "WHERE i.type = 'out' AND p.name = %s", "Salon Kréyol")
        self.assertEqual(
            (state, party, code),
            ('draft', "Salon Kréyol", "Pack d'heures supplémentaires 5 h"))
        origin, = self.query(
            'SELECT c.origin FROM forfait_credit c '
            'JOIN party_party p ON p.id = c.party '
            "WHERE p.name = %s AND c.origin IS NOT NULL", "Salon Kréyol")
        self.assertTrue(origin[0].startswith('account.invoice.line,'))
        self.click('form.logout button')

    def test_visit(self):
        browser = self.browser
        browser.get(self.base)
        browser.delete_all_cookies()
        browser.get(self.base)
        self.assertIn('/portal/login', browser.current_url)
        self.shoot('login')
        self.click('a[href$="/password/forgot"]')
        self.shoot('password_forgot')
        browser.get(self.base + 'login')
        self.find('#email').send_keys(self.email)
        self.find('#password').send_keys('not the password')
        self.click('main form button[type=submit]')
        self.assertEqual(
            self.find('p.error').text, "E-mail ou mot de passe incorrect.")
        self.find('#password').send_keys(self.password)
        self.click('main form button[type=submit]')

        # The balance: 24:00 credited, 6:30 used on three done requests
        self.assertEqual(
            self.find('h1').text, "Bonjour, Boulangerie Chez Lucette")
        figures = self.find('.gauge .figures').text
        self.assertIn("24 h", figures)
        self.assertIn("6 h 30", figures)
        self.assertIn("17 h 30", figures)
        self.assertIn("À votre rythme", self.find('.projection').text)
        self.shoot('dashboard')

        # A new request with an attachment
        self.click('nav.menu a.primary')
        self.shoot('new_request')
        self.find('#subject').send_keys("Bannière de la galette des rois")
        self.find('#category option[value=illustrations]').click()
        self.find('#description').send_keys(
            "Remplacer la bannière de l'accueil par celle-ci.")
        image = os.path.join(self.folder, 'galette.png')
        with open(image, 'wb') as f:
            f.write(PIXEL)
        self.find('#files').send_keys(image)
        self.click('main form button[type=submit]')
        self.assertIn("Votre demande a été envoyée", self.find('.notice').text)
        number = self.find('.facts dd').text
        self.assertRegex(number, r'^MAJ-\d{4}-\d{4}$')
        file_link = self.find('.list a[download]')
        self.assertEqual(file_link.text, 'galette.png')
        status, content_type, head = self.fetch(
            file_link.get_attribute('href'))
        self.assertEqual((status, head[:4]), (200, '\x89PNG'))

        # A message to the staff
        self.find('#message').send_keys("La galette doit être dorée !")
        self.click(None, self.find('#message').find_element(
                'xpath', './following::button[1]'))
        self.assertIn("transmis", self.find('.notice').text)
        self.assertIn(
            "La galette doit être dorée !", self.find('.messages').text)
        self.shoot('request')

        # The list, and the report of a done request
        self.click('nav.menu a[href$="/requests"]')
        rows = self.find_all('table.table tbody tr')
        self.assertEqual(len(rows), 5)
        self.shoot('requests')
        self.find('#state option[value=done]').click()
        self.click('.filters button')
        self.assertEqual(len(self.find_all('table.table tbody tr')), 3)
        self.click('table.table tbody tr a')
        report = self.find('a[href$="report.pdf"]').get_attribute('href')
        status, content_type, head = self.fetch(report)
        self.assertEqual(
            (status, content_type, head), (200, 'application/pdf', '%PDF-'))
        self.shoot('request_done')

        # Forfaits and the subscription page
        self.click('nav.menu a[href$="/forfaits"]')
        self.assertIn("24 h", self.find('table.table').text)
        invoice = self.find('a[href$=".pdf"][href*="/invoices/"]')
        status, content_type, head = self.fetch(invoice.get_attribute('href'))
        self.assertEqual(
            (status, content_type, head), (200, 'application/pdf', '%PDF-'))
        self.assertIn("À payer", self.find_all('table.table')[-1].text)
        self.shoot('forfaits')
        self.click('.actions a.primary')
        self.shoot('subscribe')

        # An address that does not exist
        browser.get(self.base + 'forfaits/99999999999999/statement.pdf')
        self.assertEqual(self.find('h1').text, "Page introuvable")
        self.shoot('not_found')
        self.click('main a.button')
        self.assertEqual(browser.current_url, self.base)

        # Sign out: the pages are closed again
        self.click('form.logout button')
        self.assertIn("Vous êtes déconnecté", self.find('.notice').text)
        browser.get(self.base + 'requests')
        self.assertIn('/portal/login', browser.current_url)
