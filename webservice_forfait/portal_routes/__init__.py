"""The client portal's pages, one module per area of its URLs (under
/<database>/portal):

- common: what the pages share, and /static/<name>
- account: /session, /login, /logout, /password/forgot, /password/reset
- dashboard: /
- requests: /requests, /requests/new, /requests/<number>/...
- forfaits: /forfaits, /forfaits/<id>/statement.pdf, /invoices/<id>.pdf
- subscribe: /subscribe, /packs

Importing a module registers its routes."""
from . import account, dashboard, forfaits, requests, subscribe  # noqa: F401
