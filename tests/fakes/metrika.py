"""A fake Yandex Metrika offline-calls API over real HTTP; records uploads, fails on demand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "test-metrika-token"
COUNTER = 36995060


@dataclass
class Upload:
    query: dict[str, str]
    headers: dict[str, str]
    filename: str | None
    csv: str


@dataclass
class FakeMetrika:
    uploads: list[Upload] = field(default_factory=list)
    status_requests: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    # uploading id → the status the next status request answers
    statuses: dict[str, str] = field(default_factory=dict)
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(123))

    def fail_next(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def app(self) -> web.Application:
        base = f"/management/v1/counter/{COUNTER}/offline_conversions"
        app = web.Application()
        app.router.add_post(f"{base}/upload_calls", self._upload)
        app.router.add_get(base + "/calls_uploading/{id}", self._status)
        return app

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"OAuth {TOKEN}":
            return self._error(403, "invalid_token", "Invalid oauth_token")
        if self.failures:
            status = self.failures.pop(0)
            if status == 429:
                return self._error(429, "quota_requests_by_uid", "Quota exceeded")
            return self._error(status, "backend_error", "Internal error")
        return None

    @staticmethod
    def _error(status: int, kind: str, message: str) -> web.Response:
        body = {"errors": [{"error_type": kind, "message": message}], "code": status}
        return web.json_response(body | {"message": message}, status=status)

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        file = form.get("file")
        csv = file.file.read().decode("utf-8") if hasattr(file, "file") else str(file or "")
        self.uploads.append(
            Upload(
                dict(request.query),
                dict(request.headers),
                getattr(file, "filename", None),
                csv,
            )
        )
        if (denied := self._denied(request)) is not None:
            return denied
        uploading_id = next(self._ids)
        self.statuses.setdefault(str(uploading_id), "UPLOADED")
        answer: dict[str, Any] = {
            "id": uploading_id,
            "create_time": "2026-11-21T18:02:01Z",
            "source_quantity": 0,
            "line_quantity": csv.count("\n") - 1,
            "comment": request.query.get("comment", ""),
            "client_id_type": request.query.get("client_id_type"),
            "status": "UPLOADED",
        }
        return web.json_response({"uploading": answer})

    async def _status(self, request: web.Request) -> web.Response:
        uploading_id = request.match_info["id"]
        self.status_requests.append(uploading_id)
        if (denied := self._denied(request)) is not None:
            return denied
        status = self.statuses.get(uploading_id, "PROCESSED")
        return web.json_response({"uploading": {"id": int(uploading_id), "status": status}})
