"""`GET /api/v1/clients?phone=` at a fixed rate against a database of many clients, and the RSS.

Fills a fresh database with `--clients` telephony clients (each with its phone indexed, as the
matching code writes them), starts `trubka serve` on it, asks for random existing phones (in
their `8 (9xx) …` written form) at `--rate` requests/s for `--duration` seconds (open loop)
and prints p50/p99 latency and the server's resident memory at the end.

    .venv/bin/python bench/clients_lookup.py [--clients 1000000] [--rate 100] [--duration 30]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOKEN = "bench-token"

from webhooks import free_port, pinned, wait_ready  # noqa: E402  (bench/ is not a package)


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

    port = free_port()
    env = {
        **os.environ,
        "TRUBKA_DATABASE_URL": url,
        "TRUBKA_API_TOKEN": TOKEN,
        "PYTHONWARNINGS": "ignore",
    }
    argv = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cores = os.cpu_count() or 1
    process = await asyncio.create_subprocess_exec(
        *pinned(argv, 0 if cores >= 2 else None),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
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
                await ask(rng.randint(1, args.clients))
            latencies.clear()
            total = int(args.rate * args.duration)
            began = time.perf_counter()
            tasks = []
            for i in range(total):
                delay = began + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(ask(rng.randint(1, args.clients))))
            await asyncio.gather(*tasks)
        memory = rss_mb(process.pid)  # taskset execs the server: same pid
    finally:
        process.terminate()
        await process.wait()
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(
        f"GET /api/v1/clients?phone= at {args.rate:.0f} req/s for {args.duration:.0f} s: "
        f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  errors {errors}  (goal p99 <= 2 ms)"
    )
    print(f"server RSS at the end: {memory:.0f} MB (goal <= 120 MB)")


if __name__ == "__main__":
    asyncio.run(main())
