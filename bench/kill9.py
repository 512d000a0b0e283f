"""kill -9 under load: does every acknowledged push survive, and is it applied?

Runs `trubka serve` as a separate process, keeps N MegaFon calls in flight (INCOMING, ACCEPTED,
COMPLETED, history; a push is resent until it is answered 200, as a careful PBX would), kills
the server with SIGKILL several times mid-load and restarts it at once. At the end the last
server applies everything; then the database is read directly and every push that was ever
answered 200 must be stored and applied (not set aside), and every call complete.

    .venv/bin/python bench/kill9.py [--calls-in-flight 16] [--kills 3] [--seconds 12]
                                    [--database-url postgresql+asyncpg://…/db]

Prints the pushes acknowledged, the calls completed, the kills, and the acknowledged pushes
lost (the figure that must be 0), for the database given (default: a new SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from megafon_calls import call_lifecycle

from storage.db import Database
from telephony.providers.megafon import dedup_key
from tests.serve_process import DEPLOYED

TOKEN = "kill9-token"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call_pushes(n: int) -> list[dict[str, str]]:
    phone, callid = f"7916{n % 10_000_000:07d}", f"KILL9-{os.getpid()}-{n}"
    return call_lifecycle(callid, phone, TOKEN, contact=False)


@dataclass
class Run:
    url: str
    port: int
    acknowledged: list[dict[str, str]] = field(default_factory=list)
    calls_done: int = 0
    resends: int = 0
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False


async def start_server(run: Run) -> None:
    env = {
        **os.environ,
        **DEPLOYED,  # as the deploy files run it
        "TRUBKA_DATABASE_URL": run.url,
        "TRUBKA_MEGAFON_CRM_TOKEN": TOKEN,
        "TRUBKA_API_TOKEN": "kill9-api",
    }
    run.process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(run.port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def wait_healthy(http: aiohttp.ClientSession, run: Run, limit: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            async with http.get(f"http://127.0.0.1:{run.port}/healthz") as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (aiohttp.ClientError, TimeoutError):  # not listening yet, or still starting
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("the server did not come up")


async def one_call(http: aiohttp.ClientSession, run: Run, n: int) -> None:
    for push in call_pushes(n):
        while True:  # resend until answered: an unanswered push may or may not be stored
            try:
                async with http.post(
                    f"http://127.0.0.1:{run.port}/megafon_webhook", data=push
                ) as response:
                    if response.status == 200:
                        run.acknowledged.append(push)
                        break
            except (TimeoutError, aiohttp.ClientError):
                pass
            run.resends += 1
            await asyncio.sleep(0.05)
    run.calls_done += 1


async def load(http: aiohttp.ClientSession, run: Run, in_flight: int) -> None:
    counter = iter(range(10**9))

    async def lane() -> None:
        while not run.stopping:
            await one_call(http, run, next(counter))

    await asyncio.gather(*(lane() for _ in range(in_flight)))


async def killer(http: aiohttp.ClientSession, run: Run, kills: int, seconds: float) -> list[float]:
    recoveries = []
    for _ in range(kills):
        await asyncio.sleep(seconds / (kills + 1))
        assert run.process is not None
        run.process.send_signal(signal.SIGKILL)
        await run.process.wait()
        await start_server(run)
        recoveries.append(await wait_healthy(http, run))
    await asyncio.sleep(seconds / (kills + 1))
    run.stopping = True
    return recoveries


async def verify(run: Run) -> dict[str, int]:
    db = Database(run.url)
    try:
        async with db.engine.connect() as connection:
            for _ in range(600):  # the last server applies what it was given
                waiting = (
                    await connection.execute(
                        text("SELECT count(*) FROM call_events WHERE processed_at IS NULL")
                    )
                ).scalar_one()
                if not waiting:
                    break
                await connection.commit()
                await asyncio.sleep(0.1)
            rows = (
                await connection.execute(
                    text("SELECT dedup_key, processed_at IS NOT NULL, error FROM call_events")
                )
            ).all()
            complete = (
                await connection.execute(
                    text("SELECT count(*) FROM calls WHERE status = 'Success' AND ended")
                )
            ).scalar_one()
    finally:
        await db.dispose()
    stored = {key: (applied, error) for key, applied, error in rows}
    keys = {dedup_key(push) for push in run.acknowledged}
    return {
        "acknowledged": len(keys),
        "lost": sum(1 for key in keys if key not in stored),
        "not_applied": sum(1 for key in keys if key in stored and not stored[key][0]),
        "set_aside": sum(1 for key in keys if key in stored and stored[key][1]),
        "calls_complete": int(complete),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls-in-flight", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/kill9.db"
        run = Run(url, free_port())
        await start_server(run)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await wait_healthy(http, run)
            started = time.monotonic()
            recoveries, _ = await asyncio.gather(
                killer(http, run, args.kills, args.seconds),
                load(http, run, args.calls_in_flight),
            )
            elapsed = time.monotonic() - started
        figures = await verify(run)
        assert run.process is not None
        run.process.terminate()
        await run.process.wait()
    backend = url.split("+")[0]
    print(
        f"{backend}: {args.calls_in_flight} calls in flight for {elapsed:.1f} s, "
        f"{args.kills} kill -9s (back up in {', '.join(f'{r:.1f}' for r in recoveries)} s)"
    )
    print(
        f"  pushes acknowledged {figures['acknowledged']}, resent {run.resends}, "
        f"calls completed {run.calls_done} (stored complete: {figures['calls_complete']})"
    )
    print(
        f"  acknowledged but lost: {figures['lost']}, not applied: {figures['not_applied']}, "
        f"set aside: {figures['set_aside']}"
    )
    if figures["lost"] or figures["not_applied"] or figures["set_aside"]:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
