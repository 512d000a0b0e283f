"""The move to Telegram: `https://t.me/<bot>?start=<token>` in an SMS or WhatsApp message.

The token names one client and when it expires, signed with a server secret (HMAC-SHA256,
compared in constant time): `c<client id>-<expiry, unix days>-<signature>`, base 36 numbers and
24 hex digits of signature — at most 64 characters of `A-Za-z0-9_-` as Telegram's `start`
parameter allows. `/start <token>` binds that Telegram user to the same client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_TOKEN = re.compile(r"^c([0-9a-z]{1,12})-([0-9a-z]{1,6})-([0-9a-f]{24})$")
_DAY = 86400


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


@dataclass(frozen=True)
class TelegramLinks:
    bot_username: str
    secret: bytes
    ttl: timedelta = timedelta(days=30)

    def _signature(self, body: str) -> str:
        return hmac.new(self.secret, f"tg-link:{body}".encode(), hashlib.sha256).hexdigest()[:24]

    def token(self, client_id: int, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp()) // _DAY + 1
        body = f"{_b36(client_id)}-{_b36(expires)}"
        return f"c{body}-{self._signature(body)}"

    def link(self, client_id: int, now: datetime) -> str:
        return f"https://t.me/{self.bot_username}?start={self.token(client_id, now)}"

    def client_of(self, token: str, now: datetime) -> int | None:
        """The client a token names, or None (not ours, forged, expired)."""
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        client, expires, signature = match.groups()
        if not hmac.compare_digest(signature, self._signature(f"{client}-{expires}")):
            return None
        if int(expires, 36) * _DAY < now.timestamp():
            return None
        return int(client, 36)


def looks_like_link_token(text: str) -> bool:
    return _TOKEN.match(text.strip()) is not None
