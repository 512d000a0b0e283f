"""How fast the Telegram send queue drains against the fake Bot API (no budgets, the fake's
limits off), on SQLite.

    .venv/bin/python bench/telegram_queue.py [deliveries] [clients]

Prints sends per second and the cost per send of the queue's own work (database reads and
writes, topic creation) next to a bare loop of Bot API calls to the same fake server.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.telegram.budgets import BudgetRates, Budgets
from bot.telegram.sender import Sender
from storage.db import Database
from storage.migrate import upgrade
from storage.telegram_queue import Outgoing, enqueue
from telephony.clients import create_client
from tests.fakes.telegram import TOKEN, FakeTelegram, Limits

GROUP = -1001


async def main(deliveries: int, clients: int) -> None:
    fake = FakeTelegram(limits=Limits(enabled=False))  # the queue's own cost, not Telegram's
    server = TestServer(fake.app())
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite+aiosqlite:///{folder}/bench.db")
        await upgrade(db)
        async with db.session() as session:
            ids = []
            for n in range(clients):
                client = await create_client(session, phone=f"7900{n:07d}")
                assert client.id is not None
                ids.append(client.id)
            for n in range(deliveries):
                enqueue(
                    session,
                    Outgoing(
                        target="topic", chat_id=GROUP, client_id=ids[n % clients], text=f"note {n}"
                    ),
                )
        unlimited = BudgetRates(group_per_minute=0, chat_per_second=0, global_per_second=0)
        sender = Sender(
            bot, db, managers_chat_id=GROUP, zone=ZoneInfo("UTC"), budgets=Budgets(unlimited)
        )
        started = time.perf_counter()
        await sender.drain(include_waiting=True)
        queued = time.perf_counter() - started

        started = time.perf_counter()
        for n in range(deliveries):
            await bot.send_message(GROUP, f"bare {n}")
        bare = time.perf_counter() - started
        await db.dispose()
    await bot.session.close()
    await server.close()

    sent = sum(1 for call in fake.calls if call.method == "sendMessage") - deliveries
    print(f"deliveries: {deliveries} to {clients} client topics ({sent - deliveries} cards)")
    print(f"queue: {queued:.2f} s, {deliveries / queued:.0f} sends/s")
    print(f"bare Bot API loop: {bare:.2f} s, {deliveries / bare:.0f} sends/s")
    print(f"queue overhead per send: {(queued - bare) / deliveries * 1000:.2f} ms")
    print(f"ratio queue/bare: {queued / bare:.2f}")
    print("Telegram itself allows ~20 messages/min per group, so the queue is never the limit.")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args or [500, 20])))
