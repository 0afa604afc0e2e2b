from trytond.cache import Cache
from trytond.pool import Pool, PoolMeta
from trytond.tools import timezone as tz
from trytond.transaction import Transaction


class Company(metaclass=PoolMeta):
    __name__ = 'company.company'
    _forfait_timezone_cache = Cache(
        'company.company.forfait_timezone', context=False)

    @classmethod
    def forfait_today(cls):
        """Return today for the company of the context as ir.date does, its
        time zone cached between transactions: the balances are read on
        every page, and ir.date reads the whole company each time"""
        Date = Pool().get('ir.date')
        company_id = Transaction().context.get('company')
        if company_id is None or company_id < 0:
            return Date.today()
        timezone = cls._forfait_timezone_cache.get(company_id, False)
        if timezone is False:
            timezone = cls(company_id).timezone
            cls._forfait_timezone_cache.set(company_id, timezone)
        if not timezone:
            return Date.today()
        return Date.today(timezone=tz.ZoneInfo(timezone))

    @classmethod
    def write(cls, *args):
        super().write(*args)
        cls._forfait_timezone_cache.clear()
