"""How fast managers learn of ringing calls: N calls ring at once (N = 1, 10, 30) into one
managers' group and one responsible manager, against the fake Bot API enforcing Telegram's
limits (group 20/min with edits, private ≈1/s with short bursts, 30/s in all; 429 with
retry_after beyond them).

    .venv/bin/python bench/telegram_latency.py [--calls 1,10,30] [--scale 1.0]

Each N runs on a fresh app and SQLite database: the clients are known (a responsible manager,
a topic in the group). Prints p50/p99 from the PBX's INCOMING push to the first message about
the call in the manager's private chat and in the group, the 429s received, and how long the
group needs to catch up (the last ringing message after the first push). Then a single call
from a brand-new client (topic and card first). `--scale` < 1 shrinks every Telegram window
on both sides (quick runs); figures are then in scaled seconds, not Telegram's.

    .venv/bin/python bench/telegram_latency.py --backlog 10000 [--rings 5] [--spacing 0.2]
        [--database-url URL] [--patience 60] [--scale 1.0]

runs the other question instead (bench/telegram_backlog.py): with N pushes of finished calls
stored and `trubka serve` applying them, K calls of known clients ring; seconds from each
INCOMING push to the first group message about the call, against the same with no backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_app
from bot.settings import Settings
from handlers.web.context import CALLS
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Manager
from storage.telegram_models import TelegramTopic
from telephony.clients import create_client
from telephony.phones import format_phone
from tests.fakes.telegram import TOKEN, FakeTelegram, Limits

GROUP = -1001234567890
MANAGER = 500
CRM = "bench-crm"
PATIENCE = 600.0  # seconds to wait for every message before giving up


def phone_of(n: int) -> str:
    return f"7900{n:07d}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def seed(db: Database, calls: int) -> None:
    async with db.session() as session:
        manager = Manager(name="Андрей", pbx_login="andy", telegram_user_id=MANAGER)
        session.add(manager)
        await session.flush()
        for n in range(calls):
            client = await create_client(session, phone=phone_of(n))
            client.responsible_manager_id = manager.id
            session.add(client)
            await session.flush()
            assert client.id is not None
            session.add(
                TelegramTopic(
                    client_id=client.id,
                    chat_id=GROUP,
                    message_thread_id=5000 + n,
                    card_message_id=1,
                )
            )


def first_times(fake: FakeTelegram, chat_id: int, phones: list[str], word: str) -> dict[str, float]:
    """When each phone first appeared in a message to `chat_id` holding `word`."""
    found: dict[str, float] = {}
    labels = {format_phone(p): p for p in phones}
    for api_call in fake.calls:
        if api_call.method != "sendMessage" or api_call.params.get("chat_id") != chat_id:
            continue
        text = str(api_call.params.get("text", ""))
        if word not in text:
            continue
        for label, phone in labels.items():
            if label in text and phone not in found:
                found[phone] = api_call.at
    return found


async def run(calls: int, scale: float, *, fresh: bool = False) -> dict[str, float]:
    fake = FakeTelegram(limits=Limits(scale=scale))
    telegram = TestServer(fake.app())
    await telegram.start_server()
    fake.url = str(telegram.make_url("")).rstrip("/")
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
            megafon_crm_token=CRM,
            telegram_token=TOKEN,
            telegram_api_url=fake.url,
            telegram_managers_chat_id=GROUP,
            telegram_time_scale=scale,
            telegram_escalate_after=0,
        )
        db = Database(settings.database_url)
        await upgrade(db)
        if not fresh:
            await seed(db, calls)
        app = await build_app(settings, db=db, migrate=False)
        server = TestServer(app)
        await server.start_server()
        phones = [phone_of(n + (100 if fresh else 0)) for n in range(calls)]
        pushed: dict[str, float] = {}

        async def ring(http: ClientSession, n: int, phone: str) -> None:
            pushed[phone] = time.monotonic()
            body = {
                "cmd": "event",
                "type": "INCOMING",
                "phone": phone,
                "callid": f"BENCH-{calls}-{n}",
                "user": "andy",
                "ext": "701",
                "crm_token": CRM,
            }
            async with http.post(server.make_url("/megafon_webhook"), data=body) as response:
                assert response.status == 200, await response.text()

        async with ClientSession() as http:
            await asyncio.gather(*(ring(http, n, p) for n, p in enumerate(phones)))
        await app[CALLS].inbox.drain()
        applied = time.monotonic()  # every push stored and applied (sends queued)

        def done() -> bool:
            group = first_times(fake, GROUP, phones, "INCOMING")
            private = fresh or len(first_times(fake, MANAGER, phones, "Звонит")) == len(phones)
            return len(group) == len(phones) and private

        async with asyncio.timeout(PATIENCE), fake.changed:
            await fake.changed.wait_for(done)
        group = first_times(fake, GROUP, phones, "INCOMING")
        private = first_times(fake, MANAGER, phones, "Звонит")
        await app[CALLS].inbox.drain()
        await server.close()
        await db.dispose()
    await telegram.close()
    start = min(pushed.values())
    result = {
        "group_p50": pct([group[p] - pushed[p] for p in phones], 0.5),
        "group_p99": pct([group[p] - pushed[p] for p in phones], 0.99),
        "refused": float(len(fake.refused)),
        "catch_up": max(group.values()) - start,
        "applied": applied - start,
    }
    if private:
        result["private_p50"] = pct([private[p] - pushed[p] for p in phones], 0.5)
        result["private_p99"] = pct([private[p] - pushed[p] for p in phones], 0.99)
    return result


async def main(counts: list[int], scale: float) -> None:
    unit = "s" if scale == 1 else f"s×{scale:g}"
    await run(1, scale)  # warm-up (imports, first connections): not measured
    print(f"time unit: {unit}; known clients (topic exists), one responsible manager")
    print(
        f"{'N':>3} | {'private p50':>11} {'private p99':>11} | {'group p50':>9} {'group p99':>9}"
        f" | {'429s':>4} | {'group catch-up':>14} | {'pushes applied':>14}"
    )
    for calls in counts:
        r = await run(calls, scale)
        print(
            f"{calls:>3} | {r['private_p50']:>11.3f} {r['private_p99']:>11.3f} | "
            f"{r['group_p50']:>9.3f} {r['group_p99']:>9.3f} | {int(r['refused']):>4} | "
            f"{r['catch_up']:>14.2f} | {r['applied']:>14.2f}"
        )
    fresh = await run(1, scale, fresh=True)
    print(
        f"brand-new client, 1 call: first message in the group after {fresh['group_p99']:.3f} "
        f"{unit} (topic, card, then the call), 429s: {int(fresh['refused'])}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,10,30")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--backlog", type=int, help="pushes waiting when the calls ring (bench/telegram_backlog.py)"
    )
    parser.add_argument("--rings", type=int, default=5, help="with --backlog: calls that ring")
    parser.add_argument("--spacing", type=float, default=0.2, help="with --backlog: seconds apart")
    parser.add_argument("--patience", type=float, default=60.0, help="with --backlog: seconds")
    parser.add_argument("--database-url", help="with --backlog: PostgreSQL (default SQLite)")
    args = parser.parse_args()
    if args.backlog is not None:
        import telegram_backlog  # bench/ is the script's folder

        try:
            asyncio.run(
                telegram_backlog.main(
                    args.database_url,
                    args.backlog,
                    args.rings,
                    args.spacing,
                    args.patience,
                    args.scale,
                )
            )
        except (asyncio.CancelledError, KeyboardInterrupt):
            sys.exit("interrupted: the servers were stopped")
    else:
        asyncio.run(main([int(n) for n in args.calls.split(",")], args.scale))
