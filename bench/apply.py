"""Applying stored pushes in-process: the inbox processor of a real app, every observer on.

Builds the app exactly as `serve` does (call log, call tracking, the lead decision, scenarios
from examples/scenarios.yaml), stores N MegaFon call lifecycles in its inbox
without applying them, then times applying them all. No HTTP: this isolates the apply path, so
two commits can be compared in the same run of a noisy machine:

    .venv/bin/python bench/apply.py [--calls 400] [--database-url URL] [--bare] [--telegram]

`--bare` applies with no observers (the call state machine alone). `--idle-statistics`
(PostgreSQL) first applies as many other calls and takes the planner's statistics while
nothing waits, as autovacuum may; `--no-refresh` then applies without refreshing them (the
inbox before 5 December; storage/planner_statistics.py), for a baseline. `--telegram` turns
Telegram on against the fake Bot API (tests/fakes/telegram.py), with the call's manager on
duty: the notes step queues the topic notes and private alerts as in production. `--py-spy
FILE` samples the timed part alone with py-spy (raw collapsed stacks, one frame per function)
into FILE; `bench/spy_top.py FILE` lists its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from megafon_calls import call_lifecycle  # noqa: E402  (bench/ is the script's folder)
from py_spy import start_py_spy, stop_py_spy  # noqa: E402

TOKEN = "bench-token"


def lifecycle(n: int) -> list[dict[str, str]]:
    phone, callid = f"7900{n % 10_000_000:07d}", f"APPLY-{os.getpid()}-{n}"
    return call_lifecycle(callid, phone, TOKEN, contact=False)


async def fake_telegram(db: object) -> dict[str, object]:
    """The fake Bot API serving in this process, and the manager of the calls on duty with a
    Telegram account (private alerts); the Telegram settings to build the app with."""
    from aiohttp.test_utils import TestServer

    from storage.db import Database
    from storage.models import Manager
    from tests.fakes.telegram import TOKEN as BOT_TOKEN
    from tests.fakes.telegram import FakeTelegram

    assert isinstance(db, Database)
    fake = FakeTelegram()
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    async with db.session() as session:
        session.add(Manager(name="Андрей", pbx_login="andy", telegram_user_id=500, on_duty=True))
    return {
        "telegram_token": BOT_TOKEN,
        "telegram_api_url": fake.url,
        "telegram_managers_chat_id": -1001234567890,
    }


async def idle_statistics(db: object, calls: int) -> None:
    """Other calls' pushes stored and applied (by an inbox of their own), then the statistics
    taken while none waits."""
    from sqlalchemy import text

    from storage.db import Database
    from telephony.calls.inbox import CallInbox
    from telephony.calls.pipeline import CallPipeline
    from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push

    assert isinstance(db, Database)
    history = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await history.start(process=False)
    pushes = [p for n in range(calls, 2 * calls) for p in lifecycle(n)]
    await asyncio.gather(
        *(history.submit(PROVIDER, p, dedup_key(p), command=p["cmd"]) for p in pushes)
    )
    await history.drain()
    await history.stop(grace_seconds=0)
    async with db.autocommit() as connection:
        await connection.execute(text("VACUUM ANALYZE call_events"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--bare", action="store_true", help="no observers")
    parser.add_argument("--telegram", action="store_true", help="Telegram on (fake Bot API)")
    parser.add_argument("--statements", action="store_true", help="list the SQL statements run")
    parser.add_argument(
        "--idle-statistics",
        action="store_true",
        help="PostgreSQL: statistics of an idle inbox (applied history, then VACUUM ANALYZE)",
    )
    parser.add_argument(
        "--no-refresh", action="store_true", help="the inbox never refreshes the statistics"
    )
    parser.add_argument("--py-spy", dest="py_spy", help="sample the timed part into this file")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from bot.app import build_app
    from bot.settings import load_settings
    from handlers.web.context import CALLS
    from storage.db import Database
    from storage.migrate import upgrade
    from telephony.calls.inbox import CallInbox
    from telephony.calls.pipeline import CallPipeline
    from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push

    workdir = tempfile.mkdtemp(prefix="trubka-apply-")
    url = args.database_url or f"sqlite+aiosqlite:///{workdir}/apply.db"
    db = Database(url)
    await upgrade(db)
    runner = None
    telegram: dict[str, object] = {}
    if args.telegram:
        telegram = await fake_telegram(db)
    if args.bare:
        inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
        await inbox.start(process=False)
    else:
        settings = load_settings(
            database_url=url,
            megafon_crm_token=TOKEN,
            scenarios=str(ROOT / "examples" / "scenarios.yaml"),
            **telegram,
        )
        app = await build_app(settings, db=db, migrate=False)
        from aiohttp import web

        runner = web.AppRunner(app)
        await runner.setup()  # runs the lifetimes: the inbox, the outbox worker, the scheduler
        inbox = app[CALLS].inbox
        await inbox.stop(grace_seconds=0)  # applying is timed below, not in the background
        await inbox.start(process=False)
    if args.idle_statistics:
        await idle_statistics(db, args.calls)
    if args.no_refresh:
        inbox._statistics = None  # as the inbox was before it refreshed them
    pushes = [p for n in range(args.calls) for p in lifecycle(n)]
    await asyncio.gather(
        *(inbox.submit(PROVIDER, p, dedup_key(p), command=p["cmd"]) for p in pushes)
    )
    await inbox.drain(process=False)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    from sqlalchemy import event

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    spy = await start_py_spy(args.py_spy, os.getpid()) if args.py_spy else None
    began, cpu_began = time.perf_counter(), time.process_time()
    while await inbox.process_once():
        pass
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu_began  # all threads: the loop and aiosqlite's
    event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    if spy is not None:
        await stop_py_spy(spy)
    if args.statements:
        from collections import Counter

        for sql, n in Counter(" ".join(s.split())[:150] for s in statements).most_common():
            print(f"{n:6d}  {sql}")
    await inbox.stop(grace_seconds=0)
    if runner is not None:
        await runner.cleanup()
    else:
        await db.dispose()
    kind = "no observers" if args.bare else "every observer on"
    kind += ", Telegram on" if args.telegram else ""
    print(
        f"applied {len(pushes)} pushes in {seconds:.2f} s: {len(pushes) / seconds:.0f} pushes/s "
        f"({kind}, {url.split(':', 1)[0]}); CPU {cpu / len(pushes) * 1000:.2f} ms per push "
        f"= {len(pushes) / cpu:.0f} pushes per CPU-second; "
        f"{len(statements) / len(pushes):.1f} statements per push"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
