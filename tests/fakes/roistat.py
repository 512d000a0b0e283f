"""A fake Roistat over real HTTP: proxy leads, messages and phone calls; fails on demand."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

KEY = "test-roistat-key"
API_KEY = "test-roistat-api-key"


@dataclass
class Received:
    method: str
    path: str
    raw_query: str  # exactly as sent: the PHP-style encoding is part of the contract
    params: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    at: float = field(default_factory=time.perf_counter)


@dataclass
class FakeRoistat:
    requests: list[Received] = field(default_factory=list)
    # Queue of failures for the next requests: an HTTP status, "timeout" or "error" (JSON error).
    failures: list[int | str] = field(default_factory=list)
    timeout_seconds: float = 5.0
    url: str = ""
    received: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    deals: dict[str, str] = field(default_factory=dict)  # trubka_lead_id field → deal id

    def fail_next(self, *failures: int | str) -> None:
        self.failures.extend(failures)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/proxy/1.0/leads/add", self._lead)
        app.router.add_route("*", "/api/proxy/1.0/leads/messages/add", self._message)
        app.router.add_post("/api/v1/project/phone-call", self._phone_call)
        return app

    async def _record(self, request: web.Request) -> Received | web.Response:
        raw = request.rel_url.raw_query_string
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            raw = (await request.read()).decode("ascii")
        body = await request.json() if request.content_type == "application/json" else None
        received = Received(
            request.method,
            request.path,
            raw,
            dict(parse_qsl(raw, keep_blank_values=True)),
            dict(request.headers),
            body,
        )
        self.requests.append(received)
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "timeout":  # done, but answered after the client gave up
                await asyncio.sleep(self.timeout_seconds)
                return received
            if failure == "error":
                return web.json_response({"status": "error", "error": "internal_error"})
            return web.json_response({"status": "error"}, status=int(failure))
        return received

    async def _lead(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        if isinstance(received, web.Response):
            return received
        if received.params.get("key") != KEY:
            return web.json_response({"status": "error", "error": "authentication_failed"})
        self.received.set()
        # Roistat's duplicate check: a deal still "in work" with the same lead id field is not
        # made again (with `_append`, a note is added to it); the answer names the existing one.
        lead_id = received.params.get("fields[trubka_lead_id]")
        checks = received.params.get("is_need_check_order_in_processing") == "1"
        if checks and lead_id and lead_id in self.deals:
            return web.json_response({"status": "success", "id": self.deals[lead_id]})
        deal = str(next(self._ids))
        if lead_id:
            self.deals[lead_id] = deal
        return web.json_response({"status": "success", "id": deal})

    async def _message(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        if isinstance(received, web.Response):
            return received
        if received.params.get("key") != KEY or not received.params.get("id"):
            return web.json_response({"status": "error", "error": "invalid_params"})
        return web.json_response({"status": "success"})

    async def _phone_call(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        if isinstance(received, web.Response):
            return received
        if request.headers.get("Api-key") != API_KEY:
            return web.json_response({"status": "error", "error": "authentication_failed"})
        return web.json_response({"status": "success", "phoneCall": {"id": "5"}})

    def leads(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/leads/add")]

    def messages(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/messages/add")]

    def calls(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/phone-call")]
