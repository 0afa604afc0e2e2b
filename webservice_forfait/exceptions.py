from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, ValidationError


class ForfaitValidationError(ValidationError):
    pass


class PostingError(UserError):
    pass


class LedgerAccessError(AccessError):
    pass


class EmailConfigurationError(UserError):
    pass


class PortalError(UserError):
    pass


class ConversationError(UserError):
    pass


class TimerError(UserError):
    pass
