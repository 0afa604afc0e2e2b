from trytond.cache import Cache
from trytond.pool import Pool, PoolMeta
from trytond.tools import timezone as tz
from trytond.transaction import Transaction


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'
    _timezone_cache = Cache('company.company.timezone', context=False)

    @classmethod
    def get_timezone(cls, company_id):
        "Return the time zone name of the company, cached between transactions"
        timezone = cls._timezone_cache.get(company_id, False)
        if timezone is False:
            timezone = cls(company_id).timezone
            cls._timezone_cache.set(company_id, timezone)
        return timezone

    @classmethod
    def write(cls, *args):
        super().write(*args)
        cls._timezone_cache.clear()


class Date(metaclass=PoolMeta):
    __name__ = 'ir.date'

    @classmethod
    def today(cls, timezone=None):
        # the company module reads the whole company record for its time
        # zone on each call: the balances and the portal's pages need today
        # on every request
        company_id = Transaction().context.get('company')
        if timezone is None and company_id is not None and company_id >= 0:
            name = Pool().get('company.company').get_timezone(company_id)
            if name:
                timezone = tz.ZoneInfo(name)
        return super().today(timezone=timezone)
