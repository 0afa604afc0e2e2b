"Work left unfinished by a crash is picked up again"
import datetime as dt

from trytond import config
from trytond.pool import PoolMeta
from trytond.transaction import Transaction


class Email(metaclass=PoolMeta):
    __name__ = 'inbound.email'

    @classmethod
    def forfait_process(cls, emails):
        """Process only the messages still waiting: a task run twice, or
        after the cron, does nothing more"""
        emails = [
            e for e in cls.browse([e.id for e in emails])
            if e.forfait_state in {'received', 'error'}]
        super().forfait_process(emails)

    @classmethod
    def forfait_stale_delay(cls):
        return dt.timedelta(seconds=config.getint(
                'forfait', 'received_stale_delay', default=600))

    @classmethod
    def forfait_process_stale(cls):
        """Cron: process the messages still received some minutes after
        their arrival, whatever became of their task (worker killed or
        stuck); each in a transaction of its own; return their ids"""
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        emails = cls.search([
                ('forfait_state', '=', 'received'),
                ('create_date', '<', now - cls.forfait_stale_delay()),
                ], order=[('id', 'ASC')])
        transaction = Transaction()
        if transaction.database.name == ':memory:':
            cls.forfait_process(emails)
            return [e.id for e in emails]
        for email_id in [e.id for e in emails]:
            with transaction.new_transaction() as new:
                cls.forfait_process([cls(email_id)])
                new.commit()
        return [e.id for e in emails]


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('inbound.email|forfait_process_stale',
                "Process Forfait E-mails Left Received"))
