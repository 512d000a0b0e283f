"""Webhook throughput and latency: Trubka against a bare aiohttp app, same load generator, same run.

Drives realistic MegaFon call lifecycles (contact, INCOMING, ACCEPTED, COMPLETED, history; a unique
callid and caller each) at servers started as separate processes on loopback, and prints:
- saturation: events/s and p50/p99 latency with N lifecycles in flight, and Trubka/bare ratio;
- fixed rate: p50/p99 latency at a target rate (default 300 events/s).

    .venv/bin/python bench/webhooks.py [--calls 600] [--concurrency 16] [--rate 300]
                                       [--seconds 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

TOKEN = "bench-token"
BARE_APP = """
import sys
from aiohttp import web
async def ok(request):
    await request.post()
    return web.json_response({})
app = web.Application()
app.router.add_post("/megafon_webhook", ok)
app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lifecycle(n: int) -> list[dict[str, str]]:
    phone = f"7900{n % 10_000_000:07d}"
    callid = f"BENCH-{os.getpid()}-{n}"
    base = {"phone": phone, "callid": callid, "crm_token": TOKEN}
    event = {**base, "cmd": "event", "user": "andy", "ext": "701", "diversion": "74950001122"}
    return [
        {"cmd": "contact", "phone": phone, "callid": callid, "crm_token": TOKEN},
        {**event, "type": "INCOMING"},
        {**event, "type": "ACCEPTED"},
        {**event, "type": "COMPLETED"},
        {
            **base,
            "cmd": "history",
            "type": "in",
            "status": "Success",
            "user": "andy",
            "ext": "701",
            "start": "20241202T081500Z",
            "duration": "61",
            "link": f"https://vats.example/records/{callid}.mp3",
        },
    ]


@dataclass
class Result:
    events: int
    seconds: float
    latencies: list[float]
    errors: int
    contact: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self, name: str) -> str:
        return (
            f"{name:>8}: {self.rate:8.0f} events/s  p50 {self.quantile(0.5):6.2f} ms  "
            f"p99 {self.quantile(0.99):6.2f} ms  errors {self.errors}"
        )


async def drive(url: str, start: int, calls: int, concurrency: int, rate: float | None) -> Result:
    """With `rate`, lifecycles start on a fixed schedule (open loop); else `concurrency` at once."""
    latencies: list[float] = []
    contact: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=max(concurrency, 64))
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one_call(n: int) -> None:
            nonlocal errors
            for fields in lifecycle(n):
                began = time.perf_counter()
                async with http.post(url, data=fields) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - began)
                if fields["cmd"] == "contact":
                    contact.append(latencies[-1])

        began = time.perf_counter()
        if rate is None:
            queue = iter(range(start, start + calls))

            async def worker() -> None:
                for n in queue:
                    await one_call(n)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            interval = 5 / rate  # five events per lifecycle
            tasks = []
            for i in range(calls):
                delay = began + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one_call(start + i)))
            await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
    return Result(len(latencies), seconds, latencies, errors, contact)


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{base} did not start")


async def with_server(
    argv: list[str], env: dict[str, str], port: int, body: Callable[[str], Awaitable[None]]
) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        await body(f"http://127.0.0.1:{port}/megafon_webhook")
    finally:
        process.terminate()
        await process.wait()


async def apply_rate(database_url: str, calls: int) -> float:
    """Pushes applied per second by the inbox processor (stored first, then applied in one go)."""
    from storage.db import Database
    from storage.migrate import upgrade
    from telephony.inbox import CallInbox
    from telephony.megafon import PROVIDER, dedup_key, parse_call_push
    from telephony.notify import CallObservers

    db = Database(database_url)
    await upgrade(db)
    inbox = CallInbox(db, CallObservers(), {PROVIDER: parse_call_push})
    await inbox.start(process=False)
    pushes = [p for n in range(20_000_000, 20_000_000 + calls) for p in lifecycle(n)[1:]]
    await asyncio.gather(
        *(inbox.submit(PROVIDER, p, dedup_key(p), command=p["cmd"]) for p in pushes)
    )
    await inbox.drain(process=False)
    began = time.perf_counter()
    while await inbox.process_once():
        pass
    seconds = time.perf_counter() - began
    await inbox.stop(grace_seconds=0)
    await db.dispose()
    return len(pushes) / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="lifecycles per saturation run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0, help="events/s for the fixed run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the fixed run")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="trubka-bench-")
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
    results: dict[str, Result] = {}
    fixed_calls = int(args.rate * args.seconds / 5)

    async def measure(name: str, url: str) -> None:
        await drive(url, 10_000_000, 50, 8, None)  # warm-up
        results[name] = await drive(url, 0, args.calls, args.concurrency, None)
        results[name + "@rate"] = await drive(url, 1_000_000, fixed_calls, 0, args.rate)

    bare_port = free_port()
    await with_server(
        [sys.executable, "-c", BARE_APP, str(bare_port)],
        dict(os.environ),
        bare_port,
        lambda url: measure("bare", url),
    )
    trubka_port = free_port()
    env = {
        **os.environ,
        "TRUBKA_DATABASE_URL": database_url,
        "TRUBKA_MEGAFON_CRM_TOKEN": TOKEN,
        "TRUBKA_API_TOKEN": TOKEN,
        "PYTHONWARNINGS": "ignore",
    }
    await with_server(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(trubka_port)],
        env,
        trubka_port,
        lambda url: measure("trubka", url),
    )

    backend = database_url.split(":", 1)[0]
    print(
        f"MegaFon webhooks, {args.calls} lifecycles x 5 events, "
        f"{args.concurrency} in flight, database {backend}"
    )
    print(results["bare"].line("bare"))
    print(results["trubka"].line("trubka"))
    ratio = results["trubka"].rate / results["bare"].rate
    print(f"   ratio: {ratio:.0%} of the bare aiohttp throughput (goal >= 50%)")
    print(
        f"fixed rate {args.rate:.0f} events/s for {args.seconds:.0f} s ({fixed_calls * 5} events):"
    )
    print(results["bare@rate"].line("bare"))
    print(results["trubka@rate"].line("trubka"))
    contact = sorted(results["trubka@rate"].contact)
    print(
        f"   trubka `contact` answers: p50 {contact[len(contact) // 2] * 1000:.2f} ms, "
        f"p99 {contact[int(len(contact) * 0.99)] * 1000:.2f} ms"
    )
    p99 = results["trubka@rate"].quantile(0.99)
    print(
        f"   trubka p99 {p99:.2f} ms at {results['trubka@rate'].rate:.0f} events/s (goal <= 20 ms)"
    )
    median = statistics.median(results["trubka"].latencies) * 1000
    print(f"   (saturation median {median:.2f} ms)")
    import logging

    logging.disable(logging.WARNING)
    rate = await apply_rate(database_url, args.calls)
    print(f"applying stored pushes (inbox processor alone): {rate:.0f} pushes/s")


if __name__ == "__main__":
    asyncio.run(main())
