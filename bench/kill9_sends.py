"""kill -9 during SMS sends: is every message sent or accounted for, and none sent twice?

Stores N SMS deliveries, then runs the channel sender (telephony.channels.sender) as a separate
process against a fake SMS.ru that answers each send after a short delay, kills it with SIGKILL
several times mid-send and starts it again. At the end a last sender settles what is left, and
the database and the fake's records are compared:
- lost: a delivery neither sent nor set aside with a reason (must be 0);
- duplicates: a message the fake received more than once (must be 0: an SMS costs money);
- uncertain: deliveries interrupted mid-send, set aside (not resent) with a line in the dialog.

    .venv/bin/python bench/kill9_sends.py [--messages 150] [--kills 3]
                                          [--database-url postgresql+asyncpg://…/db]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.db import Database
from storage.migrate import upgrade

API_ID = "kill9-api-id"


async def prepare(url: str, messages: int) -> None:
    from storage.channel_queue import enqueue
    from telephony.clients import create_client

    db = Database(url)
    try:
        await upgrade(db)
        async with db.session() as session:
            for n in range(messages):
                client = await create_client(session, phone=f"7916{n:07d}")
                assert client.id is not None
                await enqueue(
                    session,
                    client_id=client.id,
                    kind="sms",
                    address=client.phone or "",
                    text=f"kill9 message {n}",
                    template=None,
                    origin="kill9",
                    due=client.created_at,
                )
    finally:
        await db.dispose()


async def worker(url: str, sms_url: str) -> None:
    """The sender alone, until the queue has nothing left to do (then exit 0)."""
    from storage.channel_queue import QUEUE
    from telephony.channels.limits import Limits
    from telephony.channels.sender import ChannelSender
    from telephony.channels.service import ClientChannels
    from telephony.channels.smsru import SmsRuChannel
    from telephony.infra.clock import SystemClock
    from telephony.infra.ratelimit import TokenBuckets

    db = Database(url)
    sms = SmsRuChannel(sms_url, API_ID, timeout=5.0)
    channels: dict[str, Any] = {"sms": sms}
    service = ClientChannels(db, channels, Limits(zone=_zone()))
    sender = ChannelSender(
        db,
        channels,
        service,
        clock=SystemClock(),
        throughput={"sms": TokenBuckets(10_000, 10_000)},
        pair={},
        lease=timedelta(seconds=2),  # a killed sender's rows come back quickly
    )
    try:
        while True:
            await sender.run_once()
            if await QUEUE.next_due(db) is None and not await _running(db):
                return
            await asyncio.sleep(0.01)
    finally:
        await sms.close()
        await db.dispose()


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Moscow")


async def _running(db: Database) -> int:
    async with db.read() as session:
        result = await session.exec(  # type: ignore[call-overload]
            text("SELECT count(*) FROM channel_deliveries WHERE status = 'running'")
        )
        return int(result.scalar_one())


SELF = str(Path(__file__).resolve())


async def start_worker(url: str, sms_url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, SELF, "--worker",
        "--database-url", url, "--sms-url", sms_url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def outcome(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        async with db.read() as session:
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    text("SELECT text, status, state FROM channel_deliveries ORDER BY id")
                )
            ).all()
            lines = (
                await session.exec(  # type: ignore[call-overload]
                    text("SELECT count(*) FROM dialog_messages WHERE kind = 'sms_status'")
                )
            ).scalar_one()
    finally:
        await db.dispose()
    return {"rows": [tuple(row) for row in rows], "uncertain_lines": int(lines)}


async def main(args: argparse.Namespace) -> int:
    from tests.fakes.smsru import FakeSmsRu

    url = args.database_url
    if url is None:
        folder = tempfile.mkdtemp(prefix="trubka-kill9-sends-")
        url = f"sqlite+aiosqlite:///{folder}/kill9.db"
    await prepare(url, args.messages)
    rng = random.Random(args.seed)
    # The same text to the same number is not refused here: a duplicate must be seen, counted.
    fake = FakeSmsRu(api_id=API_ID, balance=1_000_000.0, same_text_window=0)
    app = fake.app()

    @web.middleware
    async def slow(request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(rng.uniform(0.005, 0.04))  # kills land mid-request
        return await handler(request)

    app.middlewares.append(slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    kills = 0
    started = time.monotonic()
    try:
        for _ in range(args.kills):
            before = len(fake.requests)
            process = await start_worker(url, fake.url)
            # Kill it once it is sending (the interpreter takes a while to start), mid-batch.
            waited = 0.0
            while len(fake.requests) == before and process.returncode is None and waited < 60:
                await asyncio.sleep(0.005)
                waited += 0.005
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            await process.wait()
        last = await start_worker(url, fake.url)
        await asyncio.wait_for(last.wait(), 120)
        if last.returncode != 0:
            print(f"the last sender failed: exit {last.returncode}")
            return 1
        result = await outcome(url)
        # Every send request that reached SMS.ru, whatever it answered.
        received = Counter(r.params.get("msg", "") for r in fake.requests if r.path == "/sms/send")
    finally:
        await runner.cleanup()
    rows = result["rows"]
    sent = [row for row in rows if row[1] == "sent"]
    uncertain = [row for row in rows if row[1] == "failed" and row[2] == "uncertain"]
    other = [row for row in rows if row not in sent and row not in uncertain]
    lost = [row for row in sent if received[row[0]] != 1] + other
    duplicates = sum(1 for count in received.values() if count > 1)
    print(
        f"deliveries {len(rows)}, sent {len(sent)}, uncertain {len(uncertain)} "
        f"(dialog lines {result['uncertain_lines']}), kills {kills}, "
        f"{time.monotonic() - started:.1f} s"
    )
    print(f"lost: {len(lost)}, duplicates: {duplicates}")
    return 0 if not lost and not duplicates else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=150)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=os.getpid())
    parser.add_argument("--database-url")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--sms-url")
    parsed = parser.parse_args()
    if parsed.worker:
        asyncio.run(worker(parsed.database_url, parsed.sms_url))
        sys.exit(0)
    sys.exit(asyncio.run(main(parsed)))
