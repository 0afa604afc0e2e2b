"A test class with a database of its own"
import unittest

from trytond.tests.test_tryton import activate_module, drop_db


class DatabaseTestCase(unittest.TestCase):
    "The module activated in a fresh database, dropped after the class"

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module(['webservice_forfait'])

    @classmethod
    def tearDownClass(cls):
        drop_db()
