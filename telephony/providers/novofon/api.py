"""Novofon's API client (v1, the same as Zadarma's): click-to-call, PBX statistics, recording
links, within its rate limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from telephony.calls.outcome import CallStatus
from telephony.infra.backoff import pause_after_429
from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.infra.ratelimit import RateLimiter
from telephony.providers.base import InvalidPayload, PbxError
from telephony.providers.novofon.signing import request_query, sign_request
from telephony.providers.novofon.webhook import TIME_FORMAT, disposition_status, parse_call_start

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
    status: CallStatus
    seconds: int
    is_recorded: bool


def _message(response: UpstreamResponse) -> str:
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    text = response.text.strip()
    return text[:300] if text else f"HTTP {response.status}"


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._key = key
        self._secret = secret
        self.zone = zone or ZoneInfo("Europe/Moscow")
        self.max_retry_wait = max_retry_wait
        self.limiter = limiter or RateLimiter(REQUESTS_PER_MINUTE, 60.0, clock=clock)
        self.statistics_limiter = statistics_limiter or RateLimiter(
            STATISTICS_PER_MINUTE, 60.0, clock=clock
        )
        self._clock = clock
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
                pause = pause_after_429(response.headers)
                for limiter in (self.limiter, *extra_limiters):
                    limiter.hold_off(pause)
                if attempt == 0 and pause <= self.max_retry_wait:
                    await self._clock.sleep(pause)
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
