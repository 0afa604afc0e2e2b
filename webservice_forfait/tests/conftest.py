import pytest

from trytond.tests.test_tryton import (
    DB_CACHE, activate_module, backup_db_cache, drop_db, restore_db_cache)


def _scenario_setups():
    "The cached databases of the scenarios, each from the one before it"
    from trytond.modules.account.tests.tools import create_chart
    from trytond.modules.company.tests.tools import create_company
    base = 'webservice_forfait'
    company = base + '--create_company'
    # webservice_forfait depends on account_invoice: same modules
    chart = 'account_invoice-webservice_forfait--create_company|create_chart'
    return [(company, base, create_company), (chart, company, create_chart)]


@pytest.fixture(scope='session', autouse=True)
def shared_activation():
    """Activate the module once per cache and derive from it the databases
    the scenarios would otherwise each activate again"""
    if DB_CACHE:
        from trytond.tests.tools import _get_config
        drop_db()
        activate_module(['webservice_forfait'])
        for name, parent, setup in _scenario_setups():
            drop_db()
            if restore_db_cache(name):
                continue
            drop_db()
            restore_db_cache(parent)
            setup(config=_get_config())
            backup_db_cache(name)
        drop_db()
    yield


@pytest.fixture(autouse=True)
def scenario_database(request):
    "Give each scenario a fresh database, as trytond's doctest runner does"
    yield
    if isinstance(request.node, pytest.DoctestItem):
        drop_db()
