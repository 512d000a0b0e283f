"""MegaFon virtual PBX: parsing its pushes and sending it commands (both API generations)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from telephony.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.pushes import (
    MAX_RATING,
    MAX_SECONDS,
    ContactQuery,
    EventPush,
    HistoryPush,
    RatingPush,
    bounded_number,
)
from telephony.statuses import CALL_EVENTS, CALL_STATUSES

PROVIDER = "megafon"

# Canonical statuses, keyed by their lower-case form: tenants differ in casing (missed / Missed).
STATUSES = {name.lower(): name for name in CALL_STATUSES}
EVENT_TYPES = CALL_EVENTS
_EVENT_TYPE = re.compile(r"^[A-Z_]{1,32}$")
_MAX_FIELD = 2000


class InvalidPayload(ValueError):
    """A push is missing a field or has a wrong one; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


Push = EventPush | HistoryPush | ContactQuery | RatingPush


def canonical_status(raw: str) -> str:
    """`missed` → `Missed`. An unknown status is kept as sent rather than lost."""
    return STATUSES.get(raw.strip().lower(), raw.strip())


def dedup_key(fields: Mapping[str, str]) -> str:
    """Identical pushes (the token aside) share a key: the PBX repeating itself changes nothing."""
    canonical = json.dumps(
        {k: v for k, v in sorted(fields.items()) if k != "crm_token"}, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_call_push(fields: Mapping[str, str]) -> list[EventPush | HistoryPush | RatingPush]:
    """A stored push back from its fields (the inbox's parser for MegaFon)."""
    push = parse_push(fields)
    if isinstance(push, ContactQuery):
        raise InvalidPayload("cmd", "contact is answered at once, never stored")
    return [push]


class _Fields:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = fields

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise InvalidPayload(name, "is required")
        return value

    def optional(self, name: str) -> str | None:
        value = self._fields.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > _MAX_FIELD:
            raise InvalidPayload(name, "is too long")
        return value or None

    def present(self, name: str) -> str:
        """Required to be sent, but may be empty (a missed call's `user` sometimes is)."""
        if name not in self._fields:
            raise InvalidPayload(name, "is required")
        return self.optional(name) or ""

    def party(self, name: str) -> str | Extension:
        try:
            return parse_party(self.required(name))
        except InvalidPhone as exc:
            raise InvalidPayload(name, str(exc)) from None

    def integer(self, name: str, *, required: bool, maximum: int) -> int | None:
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        if value.startswith("-") and value[1:].isdecimal():
            raise InvalidPayload(name, "must not be negative")
        try:
            return bounded_number(value, maximum)
        except ValueError as exc:
            raise InvalidPayload(name, str(exc)) from None

    def direction(self, name: str, *, required: bool) -> Literal["in", "out"] | None:
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered == "in":
            return "in"
        if lowered == "out":
            return "out"
        raise InvalidPayload(name, "must be in or out")


def parse_start(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidPayload("start", "must look like 20170703T121110Z") from None


def parse_push(fields: Mapping[str, str]) -> Push:
    """Turn a webhook's fields into a typed push, or raise InvalidPayload naming the field."""
    f = _Fields(fields)
    command = (f.optional("cmd") or "").lower()
    if command == "history":
        return HistoryPush(
            direction=f.direction("type", required=True) or "in",
            user=f.present("user"),
            phone=f.party("phone"),
            start=parse_start(f.required("start")),
            duration=f.integer("duration", required=True, maximum=MAX_SECONDS) or 0,
            callid=f.required("callid"),
            status=canonical_status(f.required("status")),
            ext=f.optional("ext"),
            telnum=f.optional("telnum"),
            diversion=f.optional("diversion"),
            group_name=f.optional("groupRealName"),
            link=f.optional("link"),
            wait=f.integer("wait", required=False, maximum=MAX_SECONDS),
            rating=f.integer("rating", required=False, maximum=MAX_RATING),
        )
    if command == "event":
        event_type = f.required("type").upper()
        if not _EVENT_TYPE.match(event_type):
            raise InvalidPayload("type", "is not an event type")
        return EventPush(
            type=event_type,
            phone=f.party("phone"),
            user=f.present("user"),
            callid=f.required("callid"),
            direction=f.direction("direction", required=False),
            ext=f.optional("ext"),
            telnum=f.optional("telnum"),
            diversion=f.optional("diversion"),
            group_name=f.optional("groupRealName"),
            second_callid=f.optional("second_callid"),
        )
    if command == "contact":
        return ContactQuery(
            phone=f.party("phone"),
            callid=f.optional("callid"),
            diversion=f.optional("diversion"),
        )
    if command == "rating":
        return RatingPush(
            callid=f.required("callid"),
            phone=f.party("phone"),
            rating=f.integer("rating", required=True, maximum=MAX_RATING) or 0,
            user=f.optional("user"),
            ext=f.optional("ext"),
        )
    raise InvalidPayload("cmd", "must be history, event, contact or rating")


@dataclass(frozen=True)
class PbxUser:
    login: str
    name: str = ""
    ext: str | None = None
    telnum: str | None = None


class PbxError(Exception):
    """The PBX refused a command or could not be reached; the message is the PBX's own."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error_message(response: UpstreamResponse) -> str:
    body = response.json()
    if isinstance(body, dict):
        for key in ("message", "error", "description"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    text = response.text.strip()
    return text[:300] if text else f"HTTP {response.status}"


class MegafonClient:
    """Commands to the PBX: `v1` (/crmapi/v1, JSON, X-API-KEY) or `legacy` (/sys/crm_api.wcgp)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        api: Literal["v1", "legacy"] = "v1",
        timeout: float = 10.0,
    ) -> None:
        self.api = api
        self._api_key = api_key
        self._http = UpstreamClient(base_url, timeout=timeout, name="the PBX")

    async def make_call(self, phone: str, user: str) -> str | None:
        """Ring `user` (login, extension or direct number), then `phone`. Returns the call id."""
        if self.api == "v1":
            response = await self._send(
                "POST", "/crmapi/v1/makecall", json_body={"phone": phone, "user": user}
            )
            body = response.json()
            return str(body["callid"]) if isinstance(body, dict) and body.get("callid") else None
        response = await self._send(
            "POST",
            "/sys/crm_api.wcgp",
            form={"cmd": "makeCall", "phone": phone, "user": user, "token": self._api_key},
        )
        return _legacy_call_id(response)

    async def users(self) -> list[PbxUser]:
        if self.api == "v1":
            body = (await self._send("GET", "/crmapi/v1/users")).json()
            items = body.get("items", []) if isinstance(body, dict) else []
            return [
                PbxUser(
                    login=str(item.get("login", "")),
                    name=str(item.get("name") or ""),
                    ext=str(item["ext"]) if item.get("ext") else None,
                    telnum=str(item["telnum"]) if item.get("telnum") else None,
                )
                for item in items
                if isinstance(item, dict) and item.get("login")
            ]
        body = (
            await self._send(
                "POST", "/sys/crm_api.wcgp", form={"cmd": "accounts", "token": self._api_key}
            )
        ).json()
        accounts = body if isinstance(body, list) else []
        return [
            PbxUser(
                login=str(item.get("name", "")),
                name=str(item.get("realName") or ""),
                ext=str(item["ext"]) if item.get("ext") else None,
                telnum=str(item["telnum"]) if item.get("telnum") else None,
            )
            for item in accounts
            if isinstance(item, dict) and item.get("name")
        ]

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        headers = {"X-API-KEY": self._api_key} if self.api == "v1" else None
        try:
            response = await self._http.request(
                method, path, json_body=json_body, form=form, headers=headers
            )
        except UpstreamError as exc:
            raise PbxError(exc.message) from None
        if response.status >= 300:
            raise PbxError(_error_message(response), response.status)
        return response

    async def close(self) -> None:
        await self._http.close()


def _legacy_call_id(response: UpstreamResponse) -> str | None:
    """The legacy makeCall answers "CallID" text, {"CallID": …}, or an object without it."""
    body = response.json()
    if isinstance(body, dict):
        value = body.get("CallID") or body.get("callid")
        return str(value) if value else None
    if isinstance(body, str | int):
        return str(body) or None
    text = response.text.strip()
    return text if text and len(text) <= 200 and " " not in text else None
