import pytest

from trytond.tests.test_tryton import drop_db


@pytest.fixture(autouse=True)
def scenario_database(request):
    "Give each scenario a fresh database, as trytond's doctest runner does"
    yield
    if isinstance(request.node, pytest.DoctestItem):
        drop_db()
