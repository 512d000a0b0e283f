"""The reports' login: the API token typed once on a form becomes a signed session cookie.

The cookie holds an expiry and an HMAC of it keyed by the API token, so changing
TRUBKA_API_TOKEN logs everybody out and nothing is stored server-side. HttpOnly (scripts
cannot read it), SameSite=Lax (other sites cannot post with it), Secure behind HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import time

COOKIE = "trubka_reports"
LIFETIME = 30 * 24 * 3600
_PURPOSE = b"trubka reports session v1"


def _key(api_token: str) -> bytes:
    return hmac.new(api_token.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()


def _signature(api_token: str, expires: int) -> str:
    return hmac.new(_key(api_token), str(expires).encode(), hashlib.sha256).hexdigest()


def issue(api_token: str, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + LIFETIME
    return f"{expires}.{_signature(api_token, expires)}"


def valid(api_token: str | None, value: str | None, now: float | None = None) -> bool:
    if not api_token or not value:
        return False
    raw_expires, _, signature = value.partition(".")
    if not raw_expires.isdigit() or len(raw_expires) > 12:
        return False
    expires = int(raw_expires)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _signature(api_token, expires).encode())
