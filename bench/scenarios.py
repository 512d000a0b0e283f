"""How fast the scenario engine stores and runs jobs, on SQLite.

    .venv/bin/python bench/scenarios.py [clients]

One rule per client message: set a variable, wait 15 minutes, re-check its `if`, set another.
Prints triggers/s (match + `if` + job stored), first-part runs/s and resumed runs/s, next to a
bare loop doing the same variable writes without the engine, and the ratio.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import Database
from storage.migrate import upgrade
from storage.models import Client
from telephony.calls.pipeline import CallPipeline
from telephony.clients import create_client, set_variables
from telephony.events import ClientMessage
from telephony.infra.clock import FakeClock
from telephony.scenarios.engine import ScenarioEngine
from telephony.scenarios.load import parse_scenarios

RULES = """
rules:
  - name: follow-up
    on: {message: {regex: "(?i)цена"}}
    if: [{since.successful_calls: 0}]
    do:
      - set_variable: {asked: "{{ message.text }}"}
      - wait: 15m
      - set_variable: {followed_up: "yes"}
"""


async def main(clients: int) -> None:
    zone = ZoneInfo("Europe/Moscow")
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite+aiosqlite:///{folder}/bench.db")
        await upgrade(db)
        ids = []
        async with db.session() as session:
            for n in range(clients):
                client = await create_client(session, phone=f"7900{n:07d}", channel="telegram")
                assert client.id is not None
                ids.append(client.id)
        clock = FakeClock()
        engine = ScenarioEngine(
            db,
            parse_scenarios(RULES, zone),
            zone=zone,
            clock=clock,
            call_observer=CallPipeline(db),
            pbx=None,
        )
        started = time.perf_counter()
        for client_id in ids:
            await engine.message_received(ClientMessage(client_id, "Какая цена?", "telegram"))
        fired = time.perf_counter() - started

        started = time.perf_counter()
        first = await engine.run_due()
        ran = time.perf_counter() - started

        clock.advance(16 * 60)
        started = time.perf_counter()
        resumed = await engine.run_due()
        resumed_time = time.perf_counter() - started

        started = time.perf_counter()
        for client_id in ids:  # the same variable writes, one transaction each, no engine
            async with db.session() as session:
                client = await session.get(Client, client_id)
                assert client is not None
                await set_variables(session, client, {"bare": "x"})
        bare = time.perf_counter() - started
        await db.dispose()
    assert first == resumed == clients
    print(f"clients: {clients}, one rule each (set_variable, wait 15m, set_variable)")
    print(f"triggers: {fired:.2f} s, {clients / fired:.0f}/s (match, `if`, job stored)")
    print(f"first part: {ran:.2f} s, {clients / ran:.0f} jobs/s (claim, set_variable, reschedule)")
    print(
        f"after the wait: {resumed_time:.2f} s, {clients / resumed_time:.0f} jobs/s (claim, "
        "`if` again, set_variable, done)"
    )
    print(f"bare variable write: {bare:.2f} s, {clients / bare:.0f}/s")
    print(f"ratio resumed job / bare write: {resumed_time / bare:.1f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:2]]
    asyncio.run(main(*(args or [500])))
