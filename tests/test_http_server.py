"""The HTTP server closes what holds a socket for nothing: slow headers, idle keep-alives."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
from aiohttp import web

from bot.app import build_app
from bot.http_server import HttpRunner
from storage.db import Database
from tests import conftest
from tests.conftest import API_TOKEN


async def _served(unused_tcp_port: int) -> HttpRunner:
    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = HttpRunner(app, header_seconds=0.3, keepalive_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    return runner


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    started = time.monotonic()
    while await asyncio.wait_for(reader.read(1024), limit):
        pass  # a response may come first; then the end of the stream
    return time.monotonic() - started


async def test_a_client_that_never_finishes_its_headers_is_dropped(unused_tcp_port: int) -> None:
    runner = await _served(unused_tcp_port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and then nothing more
        waited = await _closed_after(reader, 5)
        assert 0.2 < waited < 2
        writer.close()

        # A client that sends its request in time is served and kept alive until idle.
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.read(1024), 2)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"hi")
        waited = await _closed_after(reader, 5)
        assert 0.3 < waited < 3  # the keep-alive timeout, not the header deadline
        writer.close()
    finally:
        await runner.cleanup()


async def test_the_access_log_names_the_path_but_never_the_query(
    unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A token in a query string (some PBXs put theirs there) must not reach the logs."""
    runner = await _served(unused_tcp_port)
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{unused_tcp_port}/?token=s3cret-value"
                async with http.get(url) as response:
                    assert response.status == 200
        lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
        assert len(lines) == 1
        assert '"GET /" 200' in lines[0] and lines[0].endswith("ms")
        assert "s3cret" not in caplog.text
    finally:
        await runner.cleanup()


async def test_a_client_gone_mid_body_is_one_line_not_a_traceback(
    db: Database, caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    """A site's browser closed while posting a lead: nobody is left to answer and it is not our
    error — one info line, no "unhandled error" with a traceback. Served as `trubka serve` serves
    (the test client's server cancels handlers instead, which hides this)."""
    caplog.set_level(logging.INFO)
    app = await build_app(conftest.test_settings(), db=db, migrate=False)
    runner = HttpRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(
            b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {API_TOKEN}\r\n".encode()
            + b"Content-Length: 1000\r\n\r\n"
            + b'{"phone": "7916'
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # the handler is reading the body now
        writer.close()
        await writer.wait_closed()
        for _ in range(50):
            if any("disconnected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert any("client disconnected" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
