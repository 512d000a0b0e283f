"""Latency from an accepted MegaFon `history` webhook to the fake Roistat receiving the lead.

Runs the real app (`build_app`, outbox worker in the background) on a local port, on SQLite by
default (`--database-url postgresql+asyncpg://…` for PostgreSQL), with a fake Roistat server.
Every call is a new first-time caller, so every `history` makes one lead.

    .venv/bin/python bench/leads.py [--calls 1000] [--concurrency 8 | --rate 20]

With --rate, calls end at a fixed rate (calls per second, open loop), as a PBX sends them;
without it, `concurrency` senders push as fast as the server accepts (an overload test: pushes
are accepted faster than they are applied, and the backlog shows up as latency).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_app
from bot.settings import Settings
from tests.fakes.roistat import KEY, FakeRoistat

CRM_TOKEN = "bench-token"
GOAL_P99 = 1.0


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def history(number: int) -> dict[str, str]:
    phone = f"7910{number:07d}"
    return {
        "cmd": "history",
        "type": "in",
        "status": "Success",
        "phone": phone,
        "user": "andy",
        "ext": "701",
        "start": "20261121T120000Z",
        "duration": "95",
        "link": f"https://vats1.megapbx.ru/api/v2/call-records/record/2026-11-21/x/{phone}.mp3",
        "callid": f"BENCH-{number}",
        "diversion": "74950001122",
        "crm_token": CRM_TOKEN,
    }


async def main(calls: int, concurrency: int, rate: float | None, database_url: str | None) -> int:
    roistat = FakeRoistat()
    roistat_runner, roistat_url = await serve(roistat.app())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            megafon_crm_token=CRM_TOKEN,
            roistat_url=roistat_url,
            roistat_key=KEY,
        )
        app_runner, url = await serve(await build_app(settings))
        accepted: dict[str, float] = {}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(calls):
            queue.put_nowait(number)

        async def sender(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                fields = history(queue.get_nowait())
                async with session.post(f"{url}/megafon_webhook", data=fields) as response:
                    assert response.status == 200, await response.text()
                accepted[fields["phone"]] = time.perf_counter()

        async def one(session: aiohttp.ClientSession, number: int) -> None:
            fields = history(number)
            async with session.post(f"{url}/megafon_webhook", data=fields) as response:
                assert response.status == 200, await response.text()
            accepted[fields["phone"]] = time.perf_counter()

        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            if rate is None:
                await asyncio.gather(*(sender(session) for _ in range(concurrency)))
            else:
                tasks = []
                for number in range(calls):
                    delay = started + number / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(session, number)))
                await asyncio.gather(*tasks)
        sent = time.perf_counter() - started
        deadline = time.perf_counter() + 60
        while len(roistat.leads()) < calls and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        total = time.perf_counter() - started
        await app_runner.cleanup()
    await roistat_runner.cleanup()

    received = {r.params["phone"]: r.at for r in roistat.leads()}
    latencies = sorted(received[p] - accepted[p] for p in accepted if p in received)
    if len(latencies) < calls:
        print(f"only {len(latencies)} of {calls} leads arrived within 60 s")
        return 1
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    backend = (database_url or "sqlite").split(":")[0]
    load = f"{rate:g} calls/s" if rate is not None else f"concurrency {concurrency}"
    print(f"leads bench: {calls} calls, {load}, {backend}")
    print(f"  webhooks sent in {sent:.2f} s ({calls / sent:.0f}/s); all leads in {total:.2f} s")
    print(
        f"  accepted history -> Roistat received: p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    print(
        f"  p99 vs goal {GOAL_P99:.0f} s: {p99 / GOAL_P99:.3f} of the budget; "
        f"vs the Novofon anchor (12 h batches): {p99 / 43200:.2e}"
    )
    print(f"  duplicates at Roistat: {len(roistat.leads()) - len(received)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, help="calls per second, at a fixed pace")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.calls, args.concurrency, args.rate, args.database_url)))
