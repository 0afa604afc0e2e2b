"A test class with a database of its own, and counting its SQL statements"
import logging
import unittest
from contextlib import contextmanager

from trytond import backend
from trytond.tests.test_tryton import DB_NAME, activate_module, drop_db
from trytond.transaction import Transaction


class DatabaseTestCase(unittest.TestCase):
    "The module activated in a fresh database, dropped after the class"

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module(['webservice_forfait'])

    @classmethod
    def tearDownClass(cls):
        drop_db()


@contextmanager
def count_queries(outside=False):
    """Collect the SQL statements the database runs in the block: those of
    the current transaction, or with outside those of the transactions the
    block starts (on SQLite, the in-memory database is one connection)"""
    queries = []
    if backend.name == 'sqlite':
        if outside:
            with Transaction().start(DB_NAME, 0) as transaction:
                connection = transaction.connection
        else:
            connection = Transaction().connection
        connection.set_trace_callback(queries.append)
        try:
            yield queries
        finally:
            connection.set_trace_callback(None)
    else:
        logger = logging.getLogger('trytond.backend.postgresql.database')
        handler = logging.Handler()
        handler.emit = lambda record: queries.append(record.getMessage())
        level, propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            yield queries
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
