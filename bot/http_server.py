"""Serving the app: aiohttp with timeouts for idle and slow clients, and a graceful stop.

aiohttp keeps an idle keep-alive socket for an hour by default and has no limit on how long a
client may take to send its request headers, so a few thousand slow or idle sockets (a
"slowloris") would hold file descriptors forever. Here an idle keep-alive connection is closed
after `KEEPALIVE_SECONDS`, and a connection that has not sent complete request headers within
`HEADER_SECONDS` of opening is closed with one log line.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger("trubka.http")

KEEPALIVE_SECONDS = 75.0  # as nginx: load balancers keep theirs shorter than this
HEADER_SECONDS = 10.0


class _HeaderDeadline(RequestHandler):
    """Closes a connection whose first request's headers do not arrive in time."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._deadline = self._loop.call_later(self.header_seconds, self._too_slow)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._deadline.cancel()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        if self._request_count == 0 and self.transport is not None:
            peer = self.transport.get_extra_info("peername")
            log.warning(
                "closed a connection from %s: no request within %.0f s", peer, self.header_seconds
            )
            self.transport.close()


class _Server(web.Server):
    header_seconds = HEADER_SECONDS

    def __call__(self) -> RequestHandler:
        handler = _HeaderDeadline(self, loop=self._loop, **self._kwargs)
        handler.header_seconds = self.header_seconds  # read in connection_made, called next
        return handler


class AccessLog(AbstractAccessLogger):
    """One line per request: who, method, path (never the query string: tokens may ride in
    it), status, milliseconds. Cheaper than aiohttp's default format, which is a fifth of a
    webhook's cost under load."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class HttpRunner(web.AppRunner):
    """An AppRunner whose connections get the header deadline."""

    def __init__(
        self, app: web.Application, *, header_seconds: float = HEADER_SECONDS, **kwargs: Any
    ) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_SECONDS)
        kwargs.setdefault("access_log_class", AccessLog)
        super().__init__(app, **kwargs)
        self._header_seconds = header_seconds

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its own Server; ours differs only in the connection class it makes.
        server.__class__ = _Server
        assert isinstance(server, _Server)
        server.header_seconds = self._header_seconds
        return server


def freeze_startup_objects() -> None:
    """Moves what the started app holds (modules, routes, settings, prebuilt statements: it
    lives as long as the process) out of the garbage collector's reach. A full collection
    then walks only what requests made: it was an 80 ms pause (the p99 of every report)."""
    gc.collect()
    gc.freeze()


async def serve(app: web.Application, sock: socket.socket) -> None:
    """Serve on a bound socket until SIGINT or SIGTERM, then stop gracefully (the app's
    cleanup runs)."""
    runner = HttpRunner(app)
    await runner.setup()
    freeze_startup_objects()
    try:
        await web.SockSite(runner, sock, shutdown_timeout=10.0).start()
        log.info("serving on http://%s:%d", *sock.getsockname()[:2])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
