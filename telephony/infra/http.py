"""One small base HTTP client for every upstream: injectable base URL, timeouts, clear errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from telephony.infra.transaction_guard import check_no_open_session


class UpstreamError(Exception):
    """An upstream refused or could not be reached. `message` is the upstream's own words."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=CIMultiDict)  # case-insensitive

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (some PBX answers are bare text)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class UpstreamClient:
    """Sends requests to `base_url`; network failures and timeouts become UpstreamError."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, name: str = "upstream") -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        raw_query: str | None = None,
        data: aiohttp.FormData | bytes | None = None,
    ) -> UpstreamResponse:
        """`raw_query` is sent byte for byte (signed or PHP-style queries: yarl would re-quote
        `%7E` to `~`); `data` is a multipart form or raw bytes, instead of `form`."""
        check_no_open_session(self.name)
        url: str | URL = f"{self.base_url}{path}"
        if raw_query is not None:
            url = URL(f"{url}?{raw_query}", encoded=True)
        body: Any = data if data is not None else form
        try:
            async with self._client().request(
                method, url, json=json_body, data=body, params=params, headers=headers
            ) as response:
                payload = await response.read()
                return UpstreamResponse(response.status, payload, CIMultiDict(response.headers))
        except TimeoutError:
            raise UpstreamError(f"{self.name} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{self.name} is unreachable: {exc.__class__.__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
