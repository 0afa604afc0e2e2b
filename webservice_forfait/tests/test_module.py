from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class WebserviceForfaitTestCase(CompanyTestMixin, ModuleTestCase):
    "Test Webservice Forfait module"
    module = 'webservice_forfait'


del ModuleTestCase
