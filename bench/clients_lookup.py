"""`GET /api/v1/clients?phone=` at a fixed rate against a database of many clients, and the RSS.

Fills a fresh database with `--clients` telephony clients (each with its phone indexed, as the
matching code writes them), starts `trubka serve` on it, asks for random existing phones (in
their `8 (9xx) …` written form) at `--rate` requests/s for `--duration` seconds (open loop)
and prints p50/p99 latency and the server's resident memory at the end. The same generator
first asks a bare aiohttp app (one JSON answer, no database) at the same rate: its latency is
the floor set by the generator, the loopback and aiohttp. The server's own handling time is
read from its access log (`… 200 0.4ms`). Server and generator are pinned to different cores.

    .venv/bin/python bench/clients_lookup.py [--clients 1000000] [--rate 100] [--duration 30]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOKEN = "bench-token"

from webhooks import free_port, pinned, wait_ready  # noqa: E402  (bench/ is a folder)

from tests.serve_process import DEPLOYED  # noqa: E402

BARE_LOOKUP = """
import sys
from aiohttp import web
CLIENT = {"id": 1, "name": "Клиент", "phone": "79020000001", "channel": "telephony",
          "responsible": None, "variables": {}, "created_at": "2026-12-01T00:00:00Z"}
async def client(request):
    return web.json_response(CLIENT)
app = web.Application()
app.router.add_get("/api/v1/clients", client)
app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def phone(n: int) -> str:
    return f"7902{n:07d}"


async def fill(url: str, count: int) -> float:
    from sqlalchemy import text

    from storage.db import Database
    from storage.migrate import upgrade
    from storage.models import Client

    db = Database(url)
    await upgrade(db)
    began = time.perf_counter()
    async with db.session() as session:
        session.add(Client(name="seed", phone=phone(0)))
    if db.dialect == "postgresql":
        numbers = f"SELECT i FROM generate_series(1, {count}) AS i"
        digits = "lpad(i::text, 7, '0')"
    else:
        numbers = (
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) "
            "SELECT i FROM n"
        )
        digits = "printf('%07d', i)"
    async with db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            text(
                "INSERT INTO clients (name, phone, channel, created_at, updated_at) "
                f"SELECT 'Клиент ' || i, '7902' || {digits}, 'telephony', "
                "(SELECT created_at FROM clients WHERE id = 1), "
                f"(SELECT created_at FROM clients WHERE id = 1) FROM ({numbers}) AS numbers"
            )
        )
        await session.exec(  # type: ignore[call-overload]
            text(
                "INSERT INTO phone_index (phone, client_id, variable) "
                "SELECT phone, id, '' FROM clients"
            )
        )
    await db.dispose()
    return time.perf_counter() - began


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="trubka-clients-")
    url = args.database_url or f"sqlite+aiosqlite:///{workdir}/clients.db"
    took = await fill(url, args.clients)
    print(f"{args.clients:,} clients stored in {took:.0f} s ({url.split(':', 1)[0]})")

    cores = os.cpu_count() or 1
    server_cpu = 0 if cores >= 2 else None
    if server_cpu is not None:
        os.sched_setaffinity(0, {1})  # the generator: the other core

    bare_port = free_port()
    bare = await asyncio.create_subprocess_exec(
        *pinned([sys.executable, "-c", BARE_LOOKUP, str(bare_port)], server_cpu)
    )
    try:
        await wait_ready(f"http://127.0.0.1:{bare_port}")
        floor, _ = await measure(f"http://127.0.0.1:{bare_port}", args.rate, args.duration, 1)
    finally:
        bare.terminate()
        await bare.wait()
    print(f"bare aiohttp, same generator and rate: {floor}")

    port = free_port()
    env = {
        **os.environ,
        **DEPLOYED,  # as the deploy files run it
        "TRUBKA_DATABASE_URL": url,
        "TRUBKA_API_TOKEN": TOKEN,
        "TRUBKA_LOG_LEVEL": "INFO",
        "PYTHONWARNINGS": "ignore",
    }
    argv = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = Path(workdir) / "serve.log"
    with open(log_path, "wb") as log:  # noqa: ASYNC230 (once, before the run)
        process = await asyncio.create_subprocess_exec(
            *pinned(argv, server_cpu), env=env, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base)
            figures, errors = await measure(base, args.rate, args.duration, args.clients)
            memory = rss_mb(process.pid)  # taskset execs the server: same pid
        finally:
            process.terminate()
            await process.wait()
    handled = [
        float(match.group(1))
        for match in re.finditer(r'"GET /api/v1/clients" 200 ([\d.]+)ms', log_path.read_text())
    ]
    print(
        f"GET /api/v1/clients?phone= at {args.rate:.0f} req/s for {args.duration:.0f} s: "
        f"{figures}  errors {errors}  (goal p99 <= 2 ms)"
    )
    if handled:
        inside = Figures.of([ms / 1000 for ms in handled[20:]])  # after the warm-up
        print(f"  inside the server (its access log): {inside}")
    print(f"server RSS at the end: {memory:.0f} MB (goal <= 120 MB)")


@dataclass
class Figures:
    p50: float
    p99: float

    @staticmethod
    def of(seconds: list[float]) -> Figures:
        ordered = sorted(seconds)
        return Figures(
            ordered[len(ordered) // 2] * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        )

    def __str__(self) -> str:
        return f"p50 {self.p50:.2f} ms  p99 {self.p99:.2f} ms"


async def measure(base: str, rate: float, duration: float, clients: int) -> tuple[Figures, int]:
    """Open loop: random existing phones, in their `8 (9xx) …` written form."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(1)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def ask(n: int) -> None:
            nonlocal errors
            digits = phone(n)
            written = f"8 ({digits[1:4]}) {digits[4:7]}-{digits[7:9]}-{digits[9:]}"
            began = time.perf_counter()
            async with http.get(f"{base}/api/v1/clients", params={"phone": written}) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - began)

        for _ in range(20):  # warm-up
            await ask(rng.randint(1, clients))
        latencies.clear()
        total = int(rate * duration)
        began = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(ask(rng.randint(1, clients))))
        await asyncio.gather(*tasks)
    return Figures.of(latencies), errors

if __name__ == "__main__":
    asyncio.run(main())
