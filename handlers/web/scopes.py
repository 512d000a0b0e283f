"""Which scope each `/api/v1` route needs: the one table, enforced by one middleware
(`handlers/web/access.py` `require_scope`) and shown in the OpenAPI description.

Keys are (method, path template) as aiohttp formats them (`/api/v1/calls/{call_id}`). A route
missing here needs `admin` (closed by default) and fails tests/test_access.py, which walks the
app's route table.
"""

from __future__ import annotations

from telephony.access.scopes import (
    ADMIN,
    CALLS_READ,
    CALLS_WRITE,
    LEADS_WRITE,
    MANAGERS_ADMIN,
    REPORTS_READ,
)

API = "/api/v1"
PUBLIC = ""  # no token at all (the description of the API)

ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("GET", API + "/openapi.json"): PUBLIC,
    ("GET", API + "/docs"): PUBLIC,
    # calls and the clients they belong to
    ("POST", API + "/megafon_call"): CALLS_WRITE,
    ("POST", API + "/calls"): CALLS_WRITE,
    ("GET", API + "/calls"): CALLS_READ,
    ("GET", API + "/calls/{call_id}"): CALLS_READ,
    ("GET", API + "/clients"): CALLS_READ,
    ("GET", API + "/clients/{client_id}"): CALLS_READ,
    ("GET", API + "/clients/{client_id}/dialog"): CALLS_READ,
    ("DELETE", API + "/clients/{client_id}"): ADMIN,
    # site forms
    ("POST", API + "/leads"): LEADS_WRITE,
    # managers
    ("GET", API + "/managers"): MANAGERS_ADMIN,
    ("POST", API + "/managers"): MANAGERS_ADMIN,
    ("GET", API + "/managers/{manager_id}"): MANAGERS_ADMIN,
    ("PATCH", API + "/managers/{manager_id}"): MANAGERS_ADMIN,
    ("DELETE", API + "/managers/{manager_id}"): MANAGERS_ADMIN,
    # reports
    ("GET", API + "/reports/calls"): REPORTS_READ,
    ("GET", API + "/reports/missed"): REPORTS_READ,
    ("GET", API + "/reports/leads"): REPORTS_READ,
    ("GET", API + "/reports/tracking"): REPORTS_READ,
    # access itself
    ("GET", API + "/tokens"): ADMIN,
    ("POST", API + "/tokens"): ADMIN,
    ("DELETE", API + "/tokens/{name}"): ADMIN,
    ("GET", API + "/audit"): ADMIN,
}


def scope_of(method: str, path: str) -> str | None:
    """The scope a route needs, `PUBLIC` (""), or None when the route declared none."""
    return ROUTE_SCOPES.get((method.upper(), path))
