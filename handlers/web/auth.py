"""Secrets compared in constant time; never logged."""

from __future__ import annotations

import hmac


def same_secret(given: str | None, expected: str | None) -> bool:
    """True only when a secret is configured and the given one equals it."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
