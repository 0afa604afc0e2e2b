from trytond.pool import PoolMeta

# Forfait hours are shown as hours and minutes, never as days:
# 36 h is "36:00", not "1d 12:00".
HOURS = {'h': 60 * 60, 'm': 60, 's': 1}


class User(metaclass=PoolMeta):
    __name__ = 'res.user'

    @classmethod
    def _get_preferences(cls, user, context_only=False):
        preferences = super()._get_preferences(
            user, context_only=context_only)
        preferences['forfait_hours'] = HOURS
        return preferences
