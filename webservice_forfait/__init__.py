from . import portal_routes  # noqa: F401
