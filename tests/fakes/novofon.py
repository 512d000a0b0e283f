"""A fake Novofon API v1 over real HTTP: checks every request's signature as Novofon does,
records requests, and fails on demand (an error answer, 429, a slow answer).

The signature is recomputed here on its own (not with telephony.providers.novofon),
over the query string exactly as it arrived:
base64(hex(HMAC-SHA1(secret, path + query + md5(query)))).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

KEY = "test-novofon-key"
SECRET = "test-novofon-secret"


def expected_signature(secret: str, path: str, query: str) -> str:
    md5 = hashlib.md5(query.encode()).hexdigest()
    hexed = hmac.new(secret.encode(), (path + query + md5).encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hexed.encode()).decode()


@dataclass
class Recorded:
    path: str
    query: str  # raw, as sent
    params: dict[str, str]
    authorization: str
    signed_ok: bool


@dataclass
class FakeNovofon:
    key: str = KEY
    secret: str = SECRET
    requests: list[Recorded] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    # Answers to give before the normal ones, in order: (status, body, headers).
    queued: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""
    extensions: list[int] = field(default_factory=lambda: [100, 101])  # the PBX's extensions

    def fail(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.queued.append((status, body, headers or {}))

    def rate_limit(self, retry_after: int, times: int = 1) -> None:
        for _ in range(times):
            self.fail(
                429,
                {"status": "error", "message": "Too many requests"},
                {"Retry-After": str(retry_after), "X-RateLimit-Remaining": "0"},
            )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/request/callback/", self._callback)
        app.router.add_get("/v1/statistics/pbx/", self._statistics)
        app.router.add_get("/v1/pbx/record/request/", self._record)
        app.router.add_get("/v1/pbx/internal/", self._internal)
        return app

    async def _internal(self, request: web.Request) -> web.Response:
        _recorded, failed = await self._check(request)
        if failed is not None:
            return failed
        return web.json_response({"status": "success", "pbx_id": 12345, "numbers": self.extensions})

    async def _check(self, request: web.Request) -> tuple[Recorded, web.Response | None]:
        query = request.rel_url.raw_query_string
        authorization = request.headers.get("Authorization", "")
        key, _, signature = authorization.partition(":")
        signed_ok = key == self.key and hmac.compare_digest(
            signature, expected_signature(self.secret, request.path, query)
        )
        params = dict(parse_qsl(query, keep_blank_values=True))
        recorded = Recorded(request.path, query, params, authorization, signed_ok)
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        if not signed_ok:
            return recorded, web.json_response(
                {"status": "error", "message": "Not authorized"}, status=401
            )
        if params.get("format") != "json":
            return recorded, web.json_response(
                {"status": "error", "message": "format=json expected"}, status=400
            )
        if self.queued:
            status, body, headers = self.queued.pop(0)
            return recorded, web.json_response(body, status=status, headers=headers)
        return recorded, None

    async def _callback(self, request: web.Request) -> web.Response:
        recorded, failed = await self._check(request)
        if failed is not None:
            return failed
        params = recorded.params
        if not params.get("from") or not params.get("to"):
            return web.json_response({"status": "error", "message": "from and to are required"})
        return web.json_response(
            {
                "status": "success",
                "from": params["from"],
                "to": params["to"],
                "time": int(time.time()),
            }
        )

    async def _statistics(self, request: web.Request) -> web.Response:
        recorded, failed = await self._check(request)
        if failed is not None:
            return failed
        if recorded.params.get("version") != "2":
            return web.json_response({"status": "error", "message": "version=2 expected"})
        return web.json_response(
            {
                "status": "success",
                "start": recorded.params.get("start"),
                "end": recorded.params.get("end"),
                "stats": self.stats,
            }
        )

    async def _record(self, request: web.Request) -> web.Response:
        recorded, failed = await self._check(request)
        if failed is not None:
            return failed
        pbx_call_id = recorded.params.get("pbx_call_id", "")
        return web.json_response(
            {
                "status": "success",
                "link": f"https://api.novofon.com/v1/pbx/record/download/{pbx_call_id}.mp3",
                "lifetime_till": "2030-01-01 00:00:00",
            }
        )

    def calls_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]
