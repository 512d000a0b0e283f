"""Signed Novofon webhooks through the real app over HTTP on SQLite: new vs repeated.

Run by hand: `.venv/bin/python bench/novofon_webhooks.py [calls]`. Prints webhooks per second
for fresh calls (6 webhooks each, the recording link fetched from a local fake) and for the same
webhooks repeated (duplicates), and what verifying one signature costs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_app
from bot.settings import Settings
from telephony.providers.novofon import verify_webhook, webhook_signature
from tests.fakes.novofon import KEY, SECRET, FakeNovofon
from tests.novofon_replay import load


def calls(count: int) -> list[dict[str, str]]:
    template = load("inbound_answered")
    out = []
    for n in range(count):
        for recorded in template:
            fields = {k: v for k, v in recorded.items() if k != "Signature"}
            fields["pbx_call_id"] = f"in_bench{n:06d}"
            if "caller_id" in fields:
                fields["caller_id"] = f"7916{n:07d}"
            fields["Signature"] = webhook_signature(SECRET, fields)
            out.append(fields)
    return out


async def main(count: int) -> None:
    fake = FakeNovofon()
    fake_server = TestServer(fake.app())
    await fake_server.start_server()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            novofon_url=str(fake_server.make_url("")).rstrip("/"),
            novofon_key=KEY,
            novofon_secret=SECRET,
        )
        client = TestClient(TestServer(await build_app(settings)))
        await client.start_server()
        pushes = calls(count)

        async def send_all() -> float:
            started = time.perf_counter()
            for fields in pushes:
                body = {k: v for k, v in fields.items() if k != "Signature"}
                response = await client.post(
                    "/novofon_webhook", data=body, headers={"Signature": fields["Signature"]}
                )
                assert response.status == 200, await response.text()
                await response.read()
            return time.perf_counter() - started

        fresh = await send_all()
        repeated = await send_all()
        await client.close()
    await fake_server.close()

    fields = {k: v for k, v in pushes[0].items() if k != "Signature"}
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        verify_webhook(SECRET, fields, pushes[0]["Signature"])
    verify_us = (time.perf_counter() - started) / rounds * 1e6

    n = len(pushes)
    print(f"webhooks: {n} ({count} calls x 6)")
    print(f"fresh:      {n / fresh:8.0f} webhooks/s")
    print(f"duplicates: {n / repeated:8.0f} webhooks/s  (ratio {fresh / repeated:.2f}x faster)")
    print(f"signature check: {verify_us:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
