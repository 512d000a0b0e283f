"""Messenger links that carry the visit: `t.me/<bot>?start=<token>` and WhatsApp's prefilled code.

A token names the visit and is signed, so nobody can make a chat claim a visit it did not come
from. Telegram's `start` takes at most 64 characters of `A-Za-z0-9_-`; ours take 39:
"v" (visit tokens; other deep-link tokens use other prefixes), the visit id's 16 bytes and 12
bytes of HMAC-SHA256, both base64url without padding. The key is derived from the bot's token
(the bot is what receives `/start`), so there is no extra secret to keep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import quote

PREFIX = "v"
_ID_BYTES = 16
_MAC_BYTES = 12
_TOKEN_CHAR = "A-Za-z0-9_-"  # base64url
_SHAPE = re.compile(rf"^v[{_TOKEN_CHAR}]{{38}}$")
# WhatsApp has no start parameter: the first message carries the code, found by this pattern.
# Not `\b`: a token ending in "-" (one in 64) has no word boundary at the end of the text.
WHATSAPP_CODE = re.compile(rf"(?<![{_TOKEN_CHAR}])(v[{_TOKEN_CHAR}]{{38}})(?![{_TOKEN_CHAR}])")


def link_key(bot_token: str) -> bytes:
    return hmac.new(bot_token.encode(), b"trubka visit links", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, visit: bytes) -> bytes:
    return hmac.new(key, PREFIX.encode() + visit, hashlib.sha256).digest()[:_MAC_BYTES]


def visit_token(key: bytes, visit_id: str) -> str | None:
    """The token of a visit, or None for an id that is not the tracker's 32 hex digits."""
    try:
        visit = bytes.fromhex(visit_id)
    except ValueError:
        return None
    if len(visit) != _ID_BYTES:
        return None
    return PREFIX + _b64(visit) + _b64(_mac(key, visit))


def visit_of(key: bytes, token: str) -> str | None:
    """The visit id a token names, or None when it is not a visit token or its signature is
    wrong (compared in constant time)."""
    if not _SHAPE.match(token):
        return None
    try:
        visit = base64.urlsafe_b64decode(token[1:23] + "==")
        mac = base64.urlsafe_b64decode(token[23:])
    except (binascii.Error, ValueError):
        return None
    if len(visit) != _ID_BYTES or not hmac.compare_digest(mac, _mac(key, visit)):
        return None
    return visit.hex()


def code_in(text: str) -> str | None:
    """The first thing in a message shaped like a visit token (its signature is not checked
    here: `visit_of` does that), or None."""
    found = WHATSAPP_CODE.search(text)
    return found.group(1) if found is not None else None


def telegram_link(bot: str, token: str) -> str:
    return f"https://t.me/{bot}?start={token}"


def whatsapp_link(number: str, token: str, text: str = "Здравствуйте! Код обращения: ") -> str:
    return f"https://wa.me/{number.lstrip('+')}?text={quote(text + token)}"
