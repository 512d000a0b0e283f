"""The WhatsApp Cloud API webhook: its `X-Hub-Signature-256` and its body, turned into
`IncomingMessage`s and `DeliveryStatus`es (`apis/whatsapp.md`).

Only `field: messages` changes carry messages and statuses; other fields (template reviews,
account updates) share the URL and are acknowledged with nothing to hand over. A body that is
not Meta's shape raises `InvalidWebhook` (a ValueError), never anything else.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from telephony.channels.base import (
    ChannelKind,
    DeliveryState,
    DeliveryStatus,
    IncomingMessage,
    ParsedWebhook,
)

SIGNATURE_PREFIX = "sha256="
OBJECT = "whatsapp_business_account"
STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}
# What a manager reads in the dialog for a message that is not text.
PLACEHOLDERS = {
    "image": "[image]",
    "video": "[video]",
    "audio": "[audio]",
    "voice": "[voice]",
    "document": "[document]",
    "sticker": "[sticker]",
    "location": "[location]",
    "contacts": "[contacts]",
    "reaction": "[reaction]",
    "order": "[order]",
    "system": "[system]",
    "unsupported": "[unsupported message]",
}
MAX_ID = 256  # a wamid is about 60 characters
MAX_ADDRESS = 20


class InvalidWebhook(ValueError):
    """The body is not a WhatsApp webhook; `field` says where it broke."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def signature(app_secret: str, raw_body: bytes) -> str:
    """The header value Meta sends: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    digest = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True only with a configured secret and a header equal to the body's signature
    (compared in constant time; the hex digits in any case)."""
    if not app_secret or header is None:
        return False
    given = header.strip()
    if not given.lower().startswith(SIGNATURE_PREFIX):
        return False
    given = SIGNATURE_PREFIX + given[len(SIGNATURE_PREFIX) :].lower()
    return hmac.compare_digest(
        given.encode("utf-8", errors="replace"), signature(app_secret, raw_body).encode()
    )


def parse_webhook(body: Any) -> ParsedWebhook:
    if not isinstance(body, dict):
        raise InvalidWebhook("body", "must be a JSON object")
    parsed = ParsedWebhook()
    if body.get("object") != OBJECT:
        raise InvalidWebhook("object", f"must be {OBJECT!r}")
    for e, entry in enumerate(_list(body, "entry", "entry")):
        where = f"entry[{e}]"
        if not isinstance(entry, dict):
            raise InvalidWebhook(where, "must be an object")
        for c, change in enumerate(_list(entry, "changes", f"{where}.changes")):
            at = f"{where}.changes[{c}]"
            if not isinstance(change, dict):
                raise InvalidWebhook(at, "must be an object")
            if change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise InvalidWebhook(f"{at}.value", "must be an object")
            _read_value(value, f"{at}.value", parsed)
    return parsed


def _read_value(value: dict[str, Any], at: str, parsed: ParsedWebhook) -> None:
    names: dict[str, str] = {}
    for i, contact in enumerate(_list(value, "contacts", f"{at}.contacts")):
        if not isinstance(contact, dict):
            raise InvalidWebhook(f"{at}.contacts[{i}]", "must be an object")
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = contact.get("wa_id")
        if isinstance(wa_id, str) and isinstance(name, str):
            names[wa_id] = name[:256]
    for i, message in enumerate(_list(value, "messages", f"{at}.messages")):
        parsed.messages.append(_message(message, f"{at}.messages[{i}]", names))
    for i, status in enumerate(_list(value, "statuses", f"{at}.statuses")):
        delivery = _status(status, f"{at}.statuses[{i}]")
        if delivery is not None:
            parsed.statuses.append(delivery)


def _message(message: Any, at: str, names: dict[str, str]) -> IncomingMessage:
    if not isinstance(message, dict):
        raise InvalidWebhook(at, "must be an object")
    sender = _address(message.get("from"), f"{at}.from")
    return IncomingMessage(
        kind=ChannelKind.WHATSAPP,
        address=sender,
        provider_message_id=_id(message.get("id"), f"{at}.id"),
        text=_text_of(message),
        at=_timestamp(message.get("timestamp"), f"{at}.timestamp"),
        profile_name=names.get(sender, ""),
    )


def _text_of(message: dict[str, Any]) -> str:
    """The text a client wrote, or a readable placeholder (with a caption or a choice's title)."""
    kind = message.get("type")
    kind = kind if isinstance(kind, str) else "unsupported"
    content = message.get(kind)
    content = content if isinstance(content, dict) else {}
    if kind == "text":
        return _string(content.get("body"))
    if kind == "button":  # a template's quick-reply button
        return _string(content.get("text")) or "[button]"
    if kind == "interactive":
        for reply in ("button_reply", "list_reply"):
            chosen = content.get(reply)
            if isinstance(chosen, dict) and (title := _string(chosen.get("title"))):
                return title
        return "[interactive]"
    placeholder = PLACEHOLDERS.get(kind, f"[{kind[:32]}]")
    if kind == "reaction" and (emoji := _string(content.get("emoji"))):
        return f"[reaction {emoji}]"
    if kind == "location":
        label = _string(content.get("name")) or _string(content.get("address"))
        return f"{placeholder} {label}".strip()
    caption = _string(content.get("caption"))
    return f"{placeholder} {caption}" if caption else placeholder


def _status(status: Any, at: str) -> DeliveryStatus | None:
    if not isinstance(status, dict):
        raise InvalidWebhook(at, "must be an object")
    state = STATES.get(_string(status.get("status")))
    if state is None:
        return None  # "deleted", "warning", …: nothing the dialog shows
    code: str | None = None
    detail = ""
    errors = status.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        error = errors[0]
        raw = error.get("code")
        if isinstance(raw, int | str) and not isinstance(raw, bool):
            code = str(raw)[:32]
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        detail = _string(error.get("title")) or _string(error.get("message")) or _string(details)
    return DeliveryStatus(
        kind=ChannelKind.WHATSAPP,
        provider_message_id=_id(status.get("id"), f"{at}.id"),
        state=state,
        at=_timestamp(status.get("timestamp"), f"{at}.timestamp"),
        code=code,
        detail=detail[:500],
    )


def _list(parent: dict[str, Any], key: str, at: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidWebhook(at, "must be a list")
    return value


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise InvalidWebhook(at, "must be a message id")
    return value


def _address(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise InvalidWebhook(at, "must be a wa_id (digits)")
    if not 5 <= len(value) <= MAX_ADDRESS:
        raise InvalidWebhook(at, "must be a wa_id (5 to 20 digits)")
    return value


def _timestamp(value: Any, at: str) -> datetime:
    """Meta's Unix seconds, as a string (or a number)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidWebhook(at, "must be Unix seconds")
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 11:
        raise InvalidWebhook(at, "must be Unix seconds")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidWebhook(at, "must be Unix seconds") from None
