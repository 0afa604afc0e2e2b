from trytond.i18n import gettext
from trytond.model import ModelView, Workflow
from trytond.pool import Pool, PoolMeta
from trytond.transaction import without_check_access

from .exceptions import ForfaitValidationError
from .ledger import year_end


class Subscription(metaclass=PoolMeta):
    __name__ = 'sale.subscription'

    @classmethod
    @ModelView.button
    @Workflow.transition('running')
    def run(cls, subscriptions):
        super().run(subscriptions)
        cls.create_forfait_credits(subscriptions)

    @classmethod
    def create_forfait_credits(cls, subscriptions):
        "Credit the first contract year of each forfait line, once"
        Credit = Pool().get('forfait.credit')
        lines = [l for s in subscriptions for l in s.lines if l.is_forfait]
        existing = {
            (c.origin, c.start_date) for c in Credit.search([
                    ('origin', 'in', [str(l) for l in lines]),
                    ])}
        credits = [
            l.get_forfait_credit(l.start_date) for l in lines
            if (l, l.start_date) not in existing]
        with without_check_access():
            Credit.save(credits)
        return credits


class SubscriptionLine(metaclass=PoolMeta):
    __name__ = 'sale.subscription.line'

    @property
    def is_forfait(self):
        return bool(self.service and self.service.product.template.forfait)

    def get_forfait_credit(self, start_date):
        "Return the credit of the contract year starting on start_date"
        Credit = Pool().get('forfait.credit')
        template = self.service.product.template
        return Credit(
            company=self.subscription.company,
            party=self.subscription.party,
            start_date=start_date,
            end_date=year_end(start_date),
            hours=template.forfait_yearly_hours * int(self.quantity),
            origin=self)

    @classmethod
    def validate_fields(cls, lines, field_names):
        super().validate_fields(lines, field_names)
        for line in lines:
            if line.is_forfait and (
                    not line.quantity or line.quantity <= 0
                    or line.quantity != int(line.quantity)):
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_forfait_line_quantity',
                        line=line.rec_name))
