"""A fake MegaFon PBX over real HTTP: both command APIs, recording requests, failing on demand."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "test-pbx-key"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class FakePbx:
    api_key: str = API_KEY
    requests: list[Recorded] = field(default_factory=list)
    users: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"login": "andy", "name": "Андрей Петров", "ext": "701", "telnum": "74951234567"},
            {"login": "bob", "name": "Борис Иванов", "ext": "702", "telnum": "74951234568"},
        ]
    )
    # Set to (status, json body) to make the next commands fail that way.
    failure: tuple[int, Any] | None = None
    delay: float = 0.0
    # What legacy makeCall answers: "json", "text" or "empty".
    legacy_style: str = "json"
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(self, status: int, body: Any) -> None:
        self.failure = (status, body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/crmapi/v1/makecall", self._makecall)
        app.router.add_get("/crmapi/v1/users", self._users)
        app.router.add_post("/sys/crm_api.wcgp", self._legacy)
        return app

    async def _record(self, request: web.Request) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.headers))
        if request.content_type == "application/json":
            recorded.json = await request.json()
        elif request.can_read_body:
            recorded.form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        return recorded

    def _failed(self) -> web.Response | None:
        if self.failure is None:
            return None
        status, body = self.failure
        return web.json_response(body, status=status)

    async def _makecall(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if request.headers.get("X-API-KEY") != self.api_key:
            return web.json_response({"message": "Invalid API key"}, status=401)
        if (failed := self._failed()) is not None:
            return failed
        if not isinstance(recorded.json, dict) or not recorded.json.get("phone"):
            return web.json_response({"message": "phone is required"}, status=400)
        return web.json_response({"callid": f"fake-{next(self._ids)}"})

    async def _users(self, request: web.Request) -> web.Response:
        await self._record(request)
        if request.headers.get("X-API-KEY") != self.api_key:
            return web.json_response({"message": "Invalid API key"}, status=401)
        if (failed := self._failed()) is not None:
            return failed
        return web.json_response({"items": self.users, "info": {"total": len(self.users)}})

    async def _legacy(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if recorded.form.get("token") != self.api_key:
            return web.json_response({"error": "Invalid token"}, status=401)
        if (failed := self._failed()) is not None:
            return failed
        command = recorded.form.get("cmd")
        if command == "makeCall":
            if not recorded.form.get("phone") or not recorded.form.get("user"):
                return web.json_response({"error": "Invalid parameters"}, status=400)
            call_id = f"legacy-{next(self._ids)}"
            if self.legacy_style == "text":
                return web.Response(text=call_id)
            if self.legacy_style == "empty":
                return web.json_response({})
            return web.json_response({"CallID": call_id})
        if command == "accounts":
            return web.json_response(
                [
                    {
                        "name": u["login"],
                        "realName": u["name"],
                        "ext": int(u["ext"]),
                        "telnum": u["telnum"],
                    }
                    for u in self.users
                ]
            )
        return web.json_response({"error": "Invalid parameters"}, status=400)

    def makecalls(self) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path.endswith("/makecall") or r.form.get("cmd") == "makeCall"
        ]
