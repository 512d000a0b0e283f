"""Novofon (API v1, the same as Zadarma's): request signing, webhook signatures and parsing,
and the API client (click-to-call, PBX statistics, recording links). See apis/novofon.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from telephony.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.megafon import InvalidPayload, PbxError
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.pushes import MAX_SECONDS, EventPush, HistoryPush, RecordPush, bounded_number
from telephony.ratelimit import RateLimiter, Sleep
from telephony.statuses import CallStatus

PROVIDER = "novofon"
DEFAULT_URL = "https://api.novofon.com"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# ---------------------------------------------------------------------------------------------
# Signing (the vendor's PHP reference client)


def _php_urlencode(value: str) -> str:
    """PHP's urlencode (RFC 1738): like quote_plus, but `~` is encoded too."""
    return quote_plus(value, safe="").replace("~", "%7E")


def _php_scalar(value: object) -> str:
    if isinstance(value, bool):  # PHP casts true/false to "1"/"0"
        return "1" if value else "0"
    return str(value)


def _build_pairs(prefix: str, value: object, out: list[str]) -> None:
    if value is None:  # http_build_query skips nulls, nested ones included
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _build_pairs(f"{prefix}[{key}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _build_pairs(f"{prefix}[{index}]", item, out)
    else:
        out.append(f"{_php_urlencode(prefix)}={_php_urlencode(_php_scalar(value))}")


def http_build_query(params: Mapping[str, object]) -> str:
    """PHP's http_build_query(params, '', '&', PHP_QUERY_RFC1738), in the given key order."""
    out: list[str] = []
    for key, value in params.items():
        _build_pairs(str(key), value, out)
    return "&".join(out)


def _hex_hmac_base64(secret: str, text: str) -> str:
    """base64 of the 40-character HEX HMAC-SHA1, not of the raw digest (pitfall 1)."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def request_query(params: Mapping[str, object]) -> str:
    """The query string a request sends and signs: format=json added, nulls dropped, sorted."""
    with_format = {**params, "format": "json"}
    ordered = {key: with_format[key] for key in sorted(with_format) if with_format[key] is not None}
    return http_build_query(ordered)


def sign_request(secret: str, method_path: str, query: str) -> str:
    """sign = base64(hex(HMAC_SHA1(secret, method_path + query + md5_hex(query))))."""
    md5 = hashlib.md5(query.encode()).hexdigest()
    return _hex_hmac_base64(secret, method_path + query + md5)


# ---------------------------------------------------------------------------------------------
# Webhooks: signature and parsing

# Which fields each event's `Signature` covers, concatenated in this order.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    # Outgoing events are signed with internal + destination, not the caller id (pitfall 3).
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}
EVENTS = tuple(SIGNED_FIELDS)

# disposition → the canonical status MegaFon's calls use, so both providers read the same.
DISPOSITIONS = {
    "answered": "Success",
    "busy": "Busy",
    "cancel": "Cancel",
    "no answer": "Missed",
    "failed": "NotAvailable",
    "line limit": "NotAvailable",
    "no money": "NotAllowed",
    "no day limit": "NotAllowed",
    "no limit": "NotAllowed",
    "unallocated number": "NotFound",
}
_MAX_FIELD = 2000
# Fields stored in sized columns: longer values are malformed, not truncated.
_LIMITS = {
    "pbx_call_id": 200,
    "internal": 32,
    "destination": 32,
    "called_did": 32,
    "caller_id": 32,
    "disposition": 64,
    "call_id_with_rec": 200,
}


def webhook_signature(secret: str, fields: Mapping[str, str]) -> str:
    """The `Signature` Novofon sends with an event (KeyError for an event without one)."""
    names = SIGNED_FIELDS[fields.get("event", "").strip().upper()]
    return _hex_hmac_base64(secret, "".join(fields.get(name, "") for name in names))


def verify_webhook(secret: str | None, fields: Mapping[str, str], signature: str | None) -> bool:
    """Constant-time check of the `Signature` header; False without a secret or a signature."""
    if not secret or not signature:
        return False
    if fields.get("event", "").strip().upper() not in SIGNED_FIELDS:
        return False
    expected = webhook_signature(secret, fields)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def disposition_status(disposition: str) -> str:
    """`no answer` → `Missed`; an unknown disposition keeps its words: `no trunk` → `NoTrunk`."""
    raw = disposition.strip().lower()
    return DISPOSITIONS.get(raw) or "".join(word.capitalize() for word in raw.split()) or "Unknown"


def dedup_key(pbx_call_id: str, event: str, extra: str = "") -> str:
    """Novofon repeats events and sends END and OUT_END for one callback: (pbx_call_id, event)."""
    return hashlib.sha256(f"{PROVIDER}|{pbx_call_id}|{event}|{extra}".encode()).hexdigest()


class _Fields:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = fields

    def optional(self, name: str) -> str | None:
        value = self._fields.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > _LIMITS.get(name, _MAX_FIELD):
            raise InvalidPayload(name, "is too long")
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise InvalidPayload(name, "is required")
        return value

    def party(self, name: str) -> str | Extension:
        try:
            return parse_party(self.required(name))
        except InvalidPhone as exc:
            raise InvalidPayload(name, str(exc)) from None

    def seconds(self, name: str) -> int:
        try:
            return bounded_number(self.optional(name) or "0", MAX_SECONDS)
        except ValueError as exc:
            raise InvalidPayload(name, f"{exc} (seconds)") from None

    def start(self, zone: ZoneInfo) -> datetime:
        return parse_call_start(self.required("call_start"), zone)


def parse_call_start(value: str, zone: ZoneInfo) -> datetime:
    """`2024-01-01 12:00:00` in the account's zone (no offset is sent) → an aware UTC datetime."""
    try:
        local = datetime.strptime(value.strip(), TIME_FORMAT)
    except ValueError:
        raise InvalidPayload("call_start", "must look like 2024-01-01 12:00:00") from None
    return local.replace(tzinfo=zone).astimezone(UTC)


NovofonPush = EventPush | HistoryPush | RecordPush


@dataclass(frozen=True)
class Notification:
    """One webhook as the pushes it means, each with its dedup key, applied in order."""

    event: str
    pbx_call_id: str
    pushes: tuple[tuple[NovofonPush, str], ...]
    # NOTIFY_RECORD: the recording's id; its link must be requested through the API.
    call_id_with_rec: str | None = None

    @property
    def phone(self) -> str | Extension | None:
        return next((p.phone for p, _ in self.pushes if not isinstance(p, RecordPush)), None)


def _manager(f: _Fields) -> str:
    return f.optional("internal") or ""


def _direction(pbx_call_id: str, default: Literal["in", "out"]) -> Literal["in", "out"]:
    """`out_…` ids are calls the PBX placed (a callback's NOTIFY_END leg included)."""
    prefix = pbx_call_id[:4].lower()
    return "out" if prefix == "out_" else "in" if prefix.startswith("in_") else default


def _end_party(f: _Fields, event: str) -> str | Extension:
    """The client of an ended call. A callback's NOTIFY_END names the manager's extension as the
    caller and the dialled client as `called_did`."""
    if event == "NOTIFY_OUT_END":
        return f.party("destination")
    caller = f.party("caller_id")
    if isinstance(caller, Extension) and f.optional("called_did"):
        called = f.party("called_did")
        if isinstance(called, str):
            return called
    return caller


def _ended(
    f: _Fields, event: str, direction: Literal["in", "out"], zone: ZoneInfo
) -> tuple[tuple[NovofonPush, str], ...]:
    """NOTIFY_END / NOTIFY_OUT_END: COMPLETED when a person answered, then the outcome."""
    pbx_call_id = f.required("pbx_call_id")
    client = _end_party(f, event)
    direction = _direction(pbx_call_id, direction)
    internal = _manager(f)
    status = disposition_status(f.required("disposition"))
    history = HistoryPush(
        direction=direction,
        user=internal,
        phone=client,
        start=f.start(zone),
        duration=f.seconds("duration"),
        callid=pbx_call_id,
        status=status,
        ext=internal or None,
        telnum=f.optional("caller_id") if event == "NOTIFY_OUT_END" else None,
        diversion=f.optional("called_did") if client != f.optional("called_did") else None,
        # A callback reports both legs (END and OUT_END): one status line per outcome.
        status_line_once=True,
    )
    pushes: list[tuple[NovofonPush, str]] = []
    if status == CallStatus.SUCCESS:
        completed = EventPush(
            type="COMPLETED", phone=client, user=internal, callid=pbx_call_id, ext=internal or None
        )
        # Shared by END and OUT_END: the second COMPLETED of one call is a duplicate.
        pushes.append((completed, dedup_key(pbx_call_id, "COMPLETED")))
    pushes.append((history, dedup_key(pbx_call_id, event)))
    return tuple(pushes)


def parse_notification(fields: Mapping[str, str], zone: ZoneInfo) -> Notification:
    """A verified webhook's fields → a Notification, or InvalidPayload naming the bad field."""
    f = _Fields(fields)
    event = (f.optional("event") or "").upper()
    if event not in SIGNED_FIELDS:
        raise InvalidPayload("event", f"must be one of {', '.join(EVENTS)}")
    pbx_call_id = f.required("pbx_call_id")
    internal = _manager(f)
    pushes: tuple[tuple[NovofonPush, str], ...]
    if event in ("NOTIFY_START", "NOTIFY_INTERNAL"):
        f.start(zone)  # validated: a malformed time is a malformed event
        push = EventPush(
            type="INCOMING",
            phone=f.party("caller_id"),
            user=internal,
            callid=pbx_call_id,
            direction=_direction(pbx_call_id, "in"),
            ext=internal or None,
            diversion=f.optional("called_did"),
        )
        pushes = ((push, dedup_key(pbx_call_id, event, internal)),)
    elif event == "NOTIFY_ANSWER":
        f.start(zone)
        answered_by = internal or f.optional("destination") or ""
        push = EventPush(
            type="ACCEPTED",
            phone=f.party("caller_id"),
            user=answered_by,
            callid=pbx_call_id,
            direction="in",
            ext=answered_by or None,
        )
        pushes = ((push, dedup_key(pbx_call_id, event, answered_by)),)
    elif event == "NOTIFY_OUT_START":
        f.start(zone)
        push = EventPush(
            type="OUTGOING",
            phone=f.party("destination"),
            user=internal,
            callid=pbx_call_id,
            direction="out",
            ext=internal or None,
        )
        pushes = ((push, dedup_key(pbx_call_id, event)),)
    elif event == "NOTIFY_END":
        pushes = _ended(f, event, "in", zone)
    elif event == "NOTIFY_OUT_END":
        pushes = _ended(f, event, "out", zone)
    else:  # NOTIFY_RECORD: the link is filled in once the API gives it
        record_id = f.required("call_id_with_rec")
        return Notification(event, pbx_call_id, (), call_id_with_rec=record_id)
    return Notification(event, pbx_call_id, pushes)


# ---------------------------------------------------------------------------------------------
# The API client

REQUESTS_PER_MINUTE = 100
STATISTICS_PER_MINUTE = 3


class NovofonError(PbxError):
    """Novofon refused a request or could not be reached; the message is Novofon's own."""


@dataclass(frozen=True)
class PbxCallStat:
    """One row of `statistics/pbx` (version 2), times in UTC."""

    pbx_call_id: str
    call_id: str
    sip: str
    start: datetime
    clid: str
    destination: str
    disposition: str
    status: str
    seconds: int
    is_recorded: bool


def _message(response: UpstreamResponse) -> str:
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    text = response.text.strip()
    return text[:300] if text else f"HTTP {response.status}"


def _retry_after(response: UpstreamResponse, default: float) -> float:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class NovofonClient:
    """Signed requests to Novofon's v1 API, within its rate limits.

    Every request waits its turn in a 100/min window (statistics also in its own 3/min one).
    A 429 anyway (another program on the same key) is retried once when Novofon asks for a short
    pause (`Retry-After` ≤ max_retry_wait); otherwise it is a NovofonError with status 429.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        secret: str,
        *,
        zone: ZoneInfo | None = None,
        timeout: float = 10.0,
        max_retry_wait: float = 5.0,
        limiter: RateLimiter | None = None,
        statistics_limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._key = key
        self._secret = secret
        self.zone = zone or ZoneInfo("Europe/Moscow")
        self.max_retry_wait = max_retry_wait
        self.limiter = limiter or RateLimiter(REQUESTS_PER_MINUTE, 60.0, sleep=sleep)
        self.statistics_limiter = statistics_limiter or RateLimiter(
            STATISTICS_PER_MINUTE, 60.0, sleep=sleep
        )
        self._sleep = sleep
        self._http = UpstreamClient(base_url, timeout=timeout, name="Novofon")

    async def get(
        self,
        method_path: str,
        params: Mapping[str, object],
        *,
        extra_limiters: Sequence[RateLimiter] = (),
    ) -> dict[str, object]:
        """A signed GET; the answer's JSON object (status "success") or NovofonError."""
        query = request_query(params)
        headers = {"Authorization": f"{self._key}:{sign_request(self._secret, method_path, query)}"}
        for attempt in range(2):
            for limiter in (self.limiter, *extra_limiters):
                await limiter.acquire()
            try:
                response = await self._http.request(
                    "GET", method_path, raw_query=query, headers=headers
                )
            except UpstreamError as exc:
                raise NovofonError(exc.message) from None
            if response.status == 429:
                pause = _retry_after(response, 60.0)
                for limiter in (self.limiter, *extra_limiters):
                    limiter.hold_off(pause)
                if attempt == 0 and pause <= self.max_retry_wait:
                    await self._sleep(pause)
                    continue
                raise NovofonError(
                    f"Novofon's request limit is reached; try again in {pause:.0f} s", 429
                )
            body = response.json()
            if response.status >= 300 or not isinstance(body, dict):
                raise NovofonError(_message(response), response.status)
            if body.get("status") == "error":
                raise NovofonError(_message(response), response.status)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def callback(
        self, from_: str, to: str, *, sip: str | None = None, predicted: bool = False
    ) -> dict[str, object]:
        """Click-to-call: Novofon rings `from_` (an extension or our number), then `to`."""
        params: dict[str, object] = {"from": from_, "to": to, "sip": sip}
        if predicted:
            params["predicted"] = True
        return await self.get("/v1/request/callback/", params)

    async def pbx_statistics(
        self,
        start: datetime,
        end: datetime,
        *,
        call_type: Literal["in", "out"] | None = None,
        skip: int = 0,
        limit: int = 1000,
    ) -> list[PbxCallStat]:
        """PBX calls between two aware datetimes (≤ 1 month apart), at most `limit` (≤ 1000)."""
        params: dict[str, object] = {
            "start": start.astimezone(self.zone).strftime(TIME_FORMAT),
            "end": end.astimezone(self.zone).strftime(TIME_FORMAT),
            "version": 2,
            "call_type": call_type,
            "skip": skip or None,
            "limit": min(limit, 1000),
        }
        body = await self.get(
            "/v1/statistics/pbx/", params, extra_limiters=(self.statistics_limiter,)
        )
        rows = body.get("stats")
        return (
            [self._stat(row) for row in rows if isinstance(row, dict)]
            if isinstance(rows, list)
            else []
        )

    def _stat(self, row: Mapping[str, object]) -> PbxCallStat:
        def text(name: str) -> str:
            value = row.get(name)
            return "" if value is None else str(value)

        try:
            start = parse_call_start(text("callstart"), self.zone)
        except InvalidPayload:
            start = datetime.fromtimestamp(0, UTC)
        seconds = text("seconds")
        return PbxCallStat(
            pbx_call_id=text("pbx_call_id"),
            call_id=text("call_id"),
            sip=text("sip"),
            start=start,
            clid=text("clid"),
            destination=text("destination"),
            disposition=text("disposition"),
            status=disposition_status(text("disposition")),
            seconds=int(seconds) if seconds.isdecimal() and seconds.isascii() else 0,
            is_recorded=text("is_recorded").lower() in ("1", "true"),
        )

    async def extensions(self) -> list[str]:
        """The PBX's extension numbers (`GET /v1/pbx/internal/`), so a manager picks theirs."""
        body = await self.get("/v1/pbx/internal/", {})
        numbers = body.get("numbers")
        if not isinstance(numbers, list):
            return []
        return [str(number) for number in numbers if isinstance(number, int | str)]

    async def record_link(self, pbx_call_id: str) -> str | None:
        """A temporary link to a call's recording (ready about 40 s after the call)."""
        body = await self.get("/v1/pbx/record/request/", {"pbx_call_id": pbx_call_id})
        link = body.get("link")
        if isinstance(link, str) and link:
            return link
        links = body.get("links")
        if isinstance(links, list) and links and isinstance(links[0], str):
            return links[0]
        return None

    async def close(self) -> None:
        await self._http.close()
