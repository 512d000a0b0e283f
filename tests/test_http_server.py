"""The HTTP server closes what holds a socket for nothing: slow headers, idle keep-alives."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
from aiohttp import web

from bot.http_server import HttpRunner


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
