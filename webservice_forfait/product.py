from trytond.i18n import gettext
from trytond.model import fields
from trytond.pool import PoolMeta
from trytond.pyson import Eval

from .exceptions import ForfaitValidationError
from .ledger import ZERO


class Template(metaclass=PoolMeta):
    __name__ = 'product.template'

    forfait = fields.Boolean(
        "Forfait",
        states={'invisible': Eval('type') != 'service'},
        help="Check for a yearly update package sold by subscription.")
    forfait_monthly_hours = fields.TimeDelta(
        "Monthly Hours", 'forfait_hours',
        states={
            'invisible': ~Eval('forfait'),
            'required': Eval('forfait', False),
            },
        help="The update time per month; twelve months are credited "
        "at once for each year of subscription.")

    forfait_invoicing = fields.Selection([
            ('yearly', "Yearly in Advance"),
            ('monthly', "Monthly"),
            ], "Forfait Invoicing",
        states={
            'invisible': ~Eval('forfait'),
            'required': Eval('forfait', False),
            },
        help="How the subscription invoices the forfait; the hours are "
        "credited for the whole year either way.")

    forfait_pack = fields.Boolean(
        "Extra Hours Pack",
        states={'invisible': (Eval('type') != 'service') | Eval('forfait')},
        help="Check for hours sold once, on top of the forfait: they are "
        "credited at once, for 12 months, when the client orders them.")
    forfait_pack_hours = fields.TimeDelta(
        "Pack Hours", 'forfait_hours',
        states={
            'invisible': ~Eval('forfait_pack'),
            'required': Eval('forfait_pack', False),
            },
        help="The time credited for each pack sold.")

    @classmethod
    def default_forfait(cls):
        return False

    @classmethod
    def default_forfait_pack(cls):
        return False

    @classmethod
    def default_forfait_invoicing(cls):
        return 'yearly'

    @classmethod
    def validate_fields(cls, templates, field_names):
        super().validate_fields(templates, field_names)
        for template in templates:
            if template.forfait_pack:
                template.check_forfait_pack()
            if not template.forfait:
                continue
            if template.type != 'service':
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_forfait_service',
                        product=template.rec_name))
            if (not template.forfait_monthly_hours
                    or template.forfait_monthly_hours <= ZERO):
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_forfait_monthly_hours',
                        product=template.rec_name))

    @property
    def forfait_yearly_hours(self):
        if self.forfait and self.forfait_monthly_hours:
            return self.forfait_monthly_hours * 12

    def check_forfait_pack(self):
        if self.type != 'service' or self.forfait:
            raise ForfaitValidationError(gettext(
                    'webservice_forfait.msg_forfait_pack_service',
                    product=self.rec_name))
        if not self.forfait_pack_hours or self.forfait_pack_hours <= ZERO:
            raise ForfaitValidationError(gettext(
                    'webservice_forfait.msg_forfait_pack_hours',
                    product=self.rec_name))
