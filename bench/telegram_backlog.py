"""A ringing call behind a backlog: with N pushes waiting in the inbox, how long until a new
call's INCOMING reaches the managers' group? (`bench/telegram_latency.py --backlog N` runs it.)

Each run gets a fresh database (SQLite file, or a PostgreSQL database of its own made under
`--database-url` and dropped after): one responsible manager and K known clients, each with a
topic in the group. Then:

1. the backlog: N pushes of finished MegaFon calls (INCOMING, ACCEPTED, COMPLETED, history; new
   callers) are posted through the real webhook of the app with its inbox not applying (as
   `bench/apply.py` pauses it), so all N are stored and none applied;
2. `trubka serve` starts as a process (pinned to another core than this one when there are
   two), every observer on, Telegram against the fake Bot API of tests/fakes (Telegram's
   limits enforced) in this process; it starts applying the backlog at once;
3. K new calls from the known clients ring (an INCOMING push each, `--spacing` apart) while
   the backlog drains.

Per call: the backlog left when it rang, seconds from its INCOMING push to the push applied
(`call_events.processed_at`) and to the first group message about it (the topic's INCOMING
line). Then p50/p99, against the same with no backlog in the same run (the baseline).

The group takes 20 sends a minute (5 at once, then one per 4 s): the backlog's own notes spend
that budget too, so the group column holds Telegram's wait as well as the inbox's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from megafon_calls import call_lifecycle  # noqa: E402  (bench/ is the script's folder)
from telegram_latency import GROUP, first_times, pct, phone_of, seed  # noqa: E402
from webhooks import Backlog, free_port, pinned, server, wait_ready  # noqa: E402

from tests.postgres_admin import fresh_database as postgres_database  # noqa: E402
from tests.serve_process import DEPLOYED  # noqa: E402

CRM = "bench-crm"


@dataclass
class Ring:
    phone: str
    callid: str
    pushed: float  # monotonic, this process
    pushed_wall: float  # time.time(), to compare with the server's processed_at
    backlog: int  # pushes not yet applied right after this one was answered
    applied: float = float("inf")  # seconds after the push; inf: not within the patience
    group: float = float("inf")  # seconds after the push; inf: not within the patience


@dataclass
class Run:
    backlog: int
    stored_in: float = 0.0  # seconds to post the backlog
    rings: list[Ring] = field(default_factory=list)
    refused: int = 0  # 429s from the fake Bot API
    left: int = 0  # backlog when the last group message came (or the patience ran out)
    notes: int = -1  # Telegram deliveries not settled then (-1: not known)


def serve_cpu() -> int | None:
    """The servers' core (0) when there are two or more; this process keeps to core 1."""
    return 0 if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else None


@asynccontextmanager
async def fresh_database(base_url: str | None, name: str) -> AsyncIterator[str]:
    """A new SQLite file, or a new PostgreSQL database next to `base_url`'s (dropped after)."""
    if base_url is None or not base_url.startswith("postgresql"):
        with tempfile.TemporaryDirectory(prefix="trubka-tgbacklog-") as folder:
            yield f"sqlite+aiosqlite:///{folder}/{name}.db"
        return
    async with postgres_database(base_url, f"trubka_bench_{name}_{os.getpid()}") as url:
        yield url


async def post_all(url: str, pushes: list[dict[str, str]], connections: int) -> None:
    feed = iter(pushes)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def worker() -> None:
            for fields in feed:
                async with http.post(url, data=fields) as response:
                    if response.status != 200:
                        raise RuntimeError(f"the webhook said {response.status}")

        await asyncio.gather(*(worker() for _ in range(connections)))


async def storing_app(database_url: str, port: int) -> None:
    """The app serving its webhook with applying paused (as `bench/apply.py` pauses it), until
    it is killed: SIGKILL, so that no graceful stop applies what was stored."""
    from bot.app import build_app
    from bot.settings import Settings
    from handlers.web.context import CALLS

    settings = Settings(
        _env_file=None,
        database_url=database_url,
        megafon_crm_token=CRM,
    )
    app = await build_app(settings, migrate=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # the lifetimes run: the inbox starts applying…
    inbox = app[CALLS].inbox
    logging.disable(logging.WARNING)  # "stopped with pushes not yet applied": there are none
    await inbox.stop(grace_seconds=0)
    logging.disable(logging.NOTSET)
    await inbox.start(process=False)  # …and only stores from here on
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def prepare(database_url: str, rings: int, backlog: int) -> float:
    """Seed the known clients and store `backlog` pushes through the webhook of an app that
    does not apply them; seconds the posting took."""
    from storage.db import Database
    from storage.migrate import upgrade

    db = Database(database_url)
    await upgrade(db)
    await seed(db, rings)
    await db.dispose()
    if not backlog:
        return 0.0
    port = free_port()
    argv = [sys.executable, __file__, "store", database_url, str(port)]
    process = await asyncio.create_subprocess_exec(
        *pinned(argv, serve_cpu()), env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        calls = -(-backlog // 4)
        pushes = [
            push
            for n in range(calls)
            for push in call_lifecycle(f"OLD-{n}", f"7901{n:07d}", CRM, contact=False)
        ][:backlog]
        began = time.perf_counter()
        await post_all(f"http://127.0.0.1:{port}/megafon_webhook", pushes, 16)
        return time.perf_counter() - began
    finally:
        process.kill()  # every push answered is stored (committed); nothing more is applied
        await process.wait()


async def unsettled_notes(backlog: Backlog) -> int:
    """Telegram deliveries waiting to be sent (or being sent); -1 when the query fails."""
    from sqlalchemy import text

    from storage.telegram_queue import UNSETTLED

    try:
        async with backlog.db.read() as session:
            row = (
                await session.exec(  # type: ignore[call-overload]
                    text(
                        "SELECT count(*) FROM telegram_deliveries "
                        "WHERE status = :pending OR status = :running"
                    ),
                    params={"pending": UNSETTLED[0], "running": UNSETTLED[1]},
                )
            ).one()
    except Exception:
        return -1
    return int(row[0])


async def applied_at(backlog: Backlog, callid: str) -> float:
    """When the server applied the call's INCOMING push (epoch seconds; inf if not yet)."""
    from sqlalchemy import text

    async with backlog.db.read() as session:
        row = (
            await session.exec(  # type: ignore[call-overload]
                text("SELECT processed_at FROM call_events WHERE payload LIKE :pattern"),
                params={"pattern": f'%"{callid}"%'},
            )
        ).first()
    if row is None or row[0] is None:
        return float("inf")
    at = row[0]
    if isinstance(at, str):  # a raw text column read without the model's type
        from datetime import datetime

        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return float(at.timestamp())


async def measure(
    base_url: str | None,
    backlog: int,
    rings: int,
    spacing: float,
    patience: float,
    scale: float,
) -> Run:
    from tests.fakes.telegram import TOKEN, FakeTelegram, Limits

    run = Run(backlog)
    async with fresh_database(base_url, f"b{backlog}") as database_url:
        run.stored_in = await prepare(database_url, rings, backlog)
        fake = FakeTelegram(limits=Limits(scale=scale))
        telegram = TestServer(fake.app())
        await telegram.start_server()
        env = {
            **os.environ,
            **DEPLOYED,  # as the deploy files run it
            "TRUBKA_DATABASE_URL": database_url,
            "TRUBKA_MEGAFON_CRM_TOKEN": CRM,
            "TRUBKA_SCENARIOS": str(ROOT / "examples" / "scenarios.yaml"),
            "TRUBKA_TELEGRAM_TOKEN": TOKEN,
            "TRUBKA_TELEGRAM_API_URL": str(telegram.make_url("")).rstrip("/"),
            "TRUBKA_TELEGRAM_MANAGERS_CHAT_ID": str(GROUP),
            "TRUBKA_TELEGRAM_TIME_SCALE": str(scale),
            "TRUBKA_TELEGRAM_ESCALATE_AFTER": "0",
            "PYTHONWARNINGS": "ignore",
        }
        port = free_port()
        argv = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
        pending = Backlog(database_url)
        try:
            async with (
                server(pinned(argv, serve_cpu()), env, port) as serve,
                aiohttp.ClientSession() as http,
            ):
                for n in range(rings):
                    if n:
                        await asyncio.sleep(spacing)
                    callid = f"RING-{backlog}-{n}"
                    body = {
                        "cmd": "event",
                        "type": "INCOMING",
                        "phone": phone_of(n),
                        "callid": callid,
                        "user": "andy",
                        "ext": "701",
                        "crm_token": CRM,
                    }
                    pushed, pushed_wall = time.monotonic(), time.time()
                    async with http.post(serve.url, data=body) as response:
                        if response.status != 200:
                            raise RuntimeError(f"the webhook said {response.status}")
                    left, _ = await pending.counts()
                    run.rings.append(Ring(phone_of(n), callid, pushed, pushed_wall, left))
                phones = [ring.phone for ring in run.rings]

                def done() -> bool:
                    return len(first_times(fake, GROUP, phones, "INCOMING")) == len(phones)

                try:
                    async with asyncio.timeout(patience), fake.changed:
                        await fake.changed.wait_for(done)
                except TimeoutError:
                    pass
                run.left, _ = await pending.counts()
                run.notes = await unsettled_notes(pending)
                group = first_times(fake, GROUP, phones, "INCOMING")
                for ring in run.rings:
                    if ring.phone in group:
                        ring.group = group[ring.phone] - ring.pushed
                    ring.applied = await applied_at(pending, ring.callid) - ring.pushed_wall
                run.refused = len(fake.refused)
        finally:
            await pending.close()
            await telegram.close()
    return run


def summary(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):7.3f}  p99 {pct(values, 0.99):7.3f}"


def report(run: Run, patience: float, unit: str) -> None:
    stored = f"; stored in {run.stored_in:.1f} s" if run.backlog else ""
    print(f"backlog {run.backlog} pushes{stored} (applying paused), then serve started:")
    print(
        f"  {'call':>4} | {'backlog when rung':>17} | {'applied after':>13} | {'group after':>11}"
    )
    late = f">{patience:g} s"
    for n, ring in enumerate(run.rings):
        group = f"{ring.group:11.3f}" if ring.group != float("inf") else f"{late:>11}"
        applied = f"{ring.applied:13.3f}" if ring.applied != float("inf") else f"{late:>13}"
        print(f"  {n:>4} | {ring.backlog:>17} | {applied} | {group}")
    print(
        f"  INCOMING push → applied ({unit}): {summary([r.applied for r in run.rings])}"
        f"\n  INCOMING push → group   ({unit}): {summary([r.group for r in run.rings])}"
        f"\n  429s: {run.refused}; at the end: backlog {run.left} pushes, "
        f"{run.notes} Telegram deliveries waiting"
    )


async def main(
    database_url: str | None,
    backlog: int,
    rings: int,
    spacing: float,
    patience: float,
    scale: float,
) -> None:
    # SIGTERM ends the run as Ctrl-C does: the servers started are stopped, not left behind.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if serve_cpu() is not None:
        os.sched_setaffinity(0, {1})  # this process (the fake Bot API, the pushes) off serve's core
    backend = (database_url or "sqlite").split(":", 1)[0].split("+", 1)[0]
    unit = "s" if scale == 1 else f"s×{scale:g}"
    print(
        f"{backend}; {rings} known clients ring {spacing:g} s apart; Telegram limits "
        f"{'real' if scale == 1 else f'scaled ×{scale:g}'}; goal: group p99 <= 1 s "
        f"with {backlog} pushes waiting"
    )
    runs = []
    for size in (0, backlog) if backlog else (0,):  # the baseline first, then the backlog
        run = await measure(database_url, size, rings, spacing, patience, scale)
        report(run, patience, unit)
        runs.append(run)
    if len(runs) == 2:
        base, loaded = (pct([r.group for r in run.rings], 0.99) for run in runs)
        print(
            f"group p99: {loaded:.3f} {unit} with the backlog vs {base:.3f} {unit} without "
            f"({loaded / base:.1f}x)"
        )


if __name__ == "__main__" and sys.argv[1:2] == ["store"]:  # the storing process of `prepare`
    asyncio.run(storing_app(sys.argv[2], int(sys.argv[3])))
