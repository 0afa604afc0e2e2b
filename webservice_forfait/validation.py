"Checks of values written by any client, before they reach the database"
import datetime as dt

from trytond.i18n import gettext
from trytond.model import fields

from .exceptions import ForfaitValidationError
from .ledger import ZERO, format_duration


def check_values(Model, values, lengths=None):
    """Refuse NUL characters in texts, impossible date strings, negative
    durations and texts longer than lengths ({field name: maximum}) with a
    message naming the field"""
    lengths = lengths or {}
    for name, value in values.items():
        field = Model._fields.get(name)
        if field is None or value is None:
            continue
        if isinstance(field, (fields.Char, fields.Text)) and isinstance(
                value, str):
            if '\x00' in value:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_value_nul',
                        **Model.__names__(name)))
            maximum = lengths.get(name)
            if maximum and len(value) > maximum:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_value_too_long',
                        length=len(value), maximum=maximum,
                        **Model.__names__(name)))
        elif (field._type == 'timedelta'
                and isinstance(value, dt.timedelta) and value < ZERO):
            raise ForfaitValidationError(gettext(
                    'webservice_forfait.msg_value_duration_negative',
                    duration=format_duration(value),
                    **Model.__names__(name)))
        elif (field._type == 'date' and isinstance(value, str)):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise ForfaitValidationError(gettext(
                        'webservice_forfait.msg_value_date',
                        value=value[:40], **Model.__names__(name)))
