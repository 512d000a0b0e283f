"""What a token may do. `admin` implies every other scope."""

from __future__ import annotations

REPORTS_READ = "reports:read"
CALLS_READ = "calls:read"
CALLS_WRITE = "calls:write"
LEADS_WRITE = "leads:write"
MANAGERS_ADMIN = "managers:admin"
ADMIN = "admin"
SCOPES = (REPORTS_READ, CALLS_READ, CALLS_WRITE, LEADS_WRITE, MANAGERS_ADMIN, ADMIN)


class UnknownScope(ValueError):
    pass


def parse_scopes(raw: str) -> frozenset[str]:
    """`reports:read,calls:read` → the set; an unknown or empty list is refused by name."""
    scopes = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not scopes:
        raise UnknownScope(f"give at least one scope ({', '.join(SCOPES)})")
    return scopes


def allows(granted: frozenset[str], needed: str) -> bool:
    return needed in granted or ADMIN in granted
