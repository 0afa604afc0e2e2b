"""The staff's web client (sao) in a real headless Chromium, served by a real
trytond server: a staff member answers a client from "My Requests".

Set FORFAIT_SCREENSHOTS to a folder to keep screenshots of the walk (the
documentation's come from there)."""
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
SAO = os.path.join(HERE, '..', '.cache', 'sao')
# what sao asks for and may be missing: its optional customisations and
# the translations of the browser's language
OPTIONAL = ('/custom.css', '/custom.js', '/locale/')

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER
        and os.path.exists(os.path.join(SAO, '.installed'))),
    reason="Debian's chromium and chromium-driver, or sao "
    "(make .cache/sao/.installed), are not installed")


class StaffBrowserTestCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        cls.folder = tempfile.mkdtemp()
        cls.addClassCleanup(shutil.rmtree, cls.folder)
        env = dict(os.environ)
        env['DB_NAME'] = env.get('DB_NAME', 'browser') + '_staff_browser'
        env['TRYTOND_WEB__ROOT'] = os.path.abspath(SAO)
        if 'postgresql' not in env.get('TRYTOND_DATABASE__URI', ''):
            env['TRYTOND_DATABASE__URI'] = 'sqlite://'
            env['TRYTOND_DATABASE__PATH'] = cls.folder
        cls.server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'staff_server.py')],
            env=env, stdout=subprocess.PIPE, text=True)
        cls.addClassCleanup(cls.stop_server)
        line = cls.server.stdout.readline()
        if not line.startswith('READY'):
            raise RuntimeError("The staff server did not start: %r" % line)
        _, port, cls.login, cls.password = line.split()
        cls.base = 'http://127.0.0.1:%s/' % port
        cls.database = env['DB_NAME']

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ['--headless=new', '--no-sandbox',
                '--disable-dev-shm-usage', '--window-size=1400,900']:
            options.add_argument(argument)
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        cls.browser = webdriver.Chrome(
            service=Service(CHROMEDRIVER), options=options)
        cls.addClassCleanup(cls.browser.quit)
        cls.browser.implicitly_wait(10)
        cls.screenshots = os.environ.get('FORFAIT_SCREENSHOTS')

    @classmethod
    def stop_server(cls):
        cls.server.terminate()
        cls.server.wait(30)

    def find(self, selector):
        from selenium.webdriver.common.by import By
        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def xpath(self, path):
        from selenium.webdriver.common.by import By
        return self.browser.find_element(By.XPATH, path)

    def wait(self, condition, timeout=30):
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.browser, timeout, ignored_exceptions=[
                WebDriverException]).until(condition)

    def wait_idle(self):
        "Wait until sao has no call to the server running"
        self.wait(lambda b: b.execute_script(
                'return window.jQuery && jQuery.active == 0'))

    def shoot(self, name):
        if not self.screenshots:
            return
        os.makedirs(self.screenshots, exist_ok=True)
        self.browser.save_screenshot(
            os.path.join(self.screenshots, 'staff_%s.png' % name))

    def errors(self):
        "The console's errors, but for sao's optional files"
        return [
            e for e in self.browser.get_log('browser')
            if e['level'] == 'SEVERE' and not (
                e['source'] == 'network'
                and any(o in e['message'] for o in OPTIONAL))]

    def test_reply_from_my_requests(self):
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select
        browser = self.browser
        browser.get(self.base)
        # on PostgreSQL the server lists every database of the cluster
        self.wait(lambda b: any(e.is_displayed() for e in b.find_elements(
                    'css selector', 'select#database option, '
                    'input#database[readonly]')))
        database = self.find('select#database')
        if database.is_displayed():
            Select(database).select_by_value(self.database)
        self.find('#login').send_keys(self.login, Keys.RETURN)
        password = self.find('input[type=password]')
        password.send_keys(self.password, Keys.RETURN)

        # the menu, then the requests: "My Requests" first, with counts
        menu = '//div[@id="menu"]//div[contains(@class, "column-char")' \
            ' and @title="%s"]'
        self.xpath(menu % "Forfaits").find_element(
            'xpath', '../../span[@class="expander"]').click()
        self.xpath(menu % "Demandes").click()
        active = self.xpath(
            '//div[@id="tabcontent"]//li[contains(@class, "active")]'
            '/a[contains(., "Mes demandes")]')
        self.wait(lambda b: '1' in active.text)
        self.wait_idle()
        for tab, count in [
                ("Mes demandes", 1), ("À répondre", 1),
                ("Non attribuées", 1)]:
            badge = self.xpath(
                '//div[@id="tabcontent"]//a[contains(., "%s")]'
                '/span[contains(@class, "badge")]' % tab)
            self.wait(lambda b: badge.text == str(count))
        rows = browser.find_elements(
            'xpath', '//div[@id="tabcontent"]//table//tbody/tr[td]')
        self.assertEqual(len([r for r in rows if r.text.strip()]), 1)
        self.assertIn("Photos des gâteaux de fête", rows[0].text)
        self.shoot('my_requests')

        # open the request and reply from a template
        ActionChains(browser).double_click(self.xpath(
                '//div[@id="tabcontent"]//td[contains(., '
                '"Photos des gâteaux")]')).perform()
        self.wait_idle()
        self.xpath(
            '//div[@id="tabcontent"]//button[contains(., "Répondre")]'
            ).click()
        dialog = '//div[contains(@class, "modal-dialog")]'
        template = self.xpath(dialog + '//input[@name="template"]')
        template.send_keys("Informations", Keys.TAB)
        self.wait_idle()
        # sao lets pick among what matches: the shipped French template
        choice = browser.find_elements('xpath', (
                '(%s)[2]//td[contains(., "Informations nécessaires")]'
                % dialog))
        if choice:
            ActionChains(browser).double_click(choice[0]).perform()
            self.wait_idle()
        content = self.xpath(dialog + '//textarea[@name="content"]')
        self.wait(lambda b: "Bonjour" in content.get_attribute('value'))
        self.assertIn(
            "Photos des gâteaux de fête", content.get_attribute('value'))
        content.send_keys(Keys.END, "\nLes photos sont-elles en couleur ?")
        self.shoot('reply')
        self.xpath(dialog + '//button[contains(., "Envoyer")]').click()
        self.wait(lambda b: not b.find_elements('xpath', dialog))
        self.wait_idle()

        # the reply left the chat for the outbox: pending, the SMTP is down
        self.xpath(
            '//div[@id="tabcontent"]//a[@role="tab" and contains(., '
            '"E-mails")]').click()
        self.wait_idle()
        self.xpath(
            '//div[@id="tabcontent"]//button[@id="reload"]').click()
        self.wait_idle()
        self.xpath(
            '//div[@id="tabcontent"]//a[@role="tab" and contains(., '
            '"E-mails")]').click()
        row = self.xpath(
            '//div[@id="tabcontent"]//table//tbody/tr[contains(., '
            '"lucette@chezlucette.mq")]')
        self.assertIn("En attente", row.text)
        self.shoot('emails')
        self.assertEqual(self.errors(), [])
