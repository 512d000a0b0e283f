"""A slice decided set-wise (`CallPipeline.decide_many`, the steps' `decide_many`) stores the same
rows as the same slice decided one change after the other (each step's `decide`).

The real app's steps (leads, Telegram notes and private alerts, scenarios) decide the same
interleaved pushes of three calls twice on an emptied database: once with the pipeline as the
inbox runs it, once with a pipeline deciding each change on its own, in the same slices. Every
table's rows (ids included; times left out) must be equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from sqlalchemy import Column, DateTime, delete, select, text
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.roles import Role
from bot.telegram.notifier import TopicNotifier
from handlers.web.context import CALLS
from storage.db import Database
from storage.models import Manager
from telephony.calls.inbox import CallInbox
from telephony.calls.pipeline import CallPipeline, Decided
from telephony.calls.pushes import EventPush
from telephony.clients import create_client
from telephony.events import CallUpdate
from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push, parse_push
from tests.conftest import AppFactory
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.megafon_replay import load

GROUP = -1001234567890
KNOWN = "79101234567"  # a client with a responsible manager: a ringing alert goes to them


class OneByOne(CallPipeline):
    """The reference: every change of a slice through every step with `decide`, in order."""

    async def decide_many(
        self, session: AsyncSession, updates: Sequence[CallUpdate]
    ) -> list[Decided]:
        return [await self.decide(session, update) for update in updates]


def call(fixture: str, callid: str, phone: str) -> list[dict[str, str]]:
    pushes = load(fixture)
    return [{**p, "callid": callid, "phone": phone} for p in pushes if p["cmd"] != "contact"]


def interleaved() -> list[dict[str, str]]:
    """Three calls' pushes taken in turns: two from the known client (the second is not a
    first-time caller), one missed call from an unknown number."""
    calls = [
        call("inbound_answered", "BATCH-1", KNOWN),
        call("inbound_missed", "BATCH-2", "79169998877"),
        call("inbound_answered", "BATCH-3", KNOWN),
    ]
    return [push for turn in zip_longest(*calls) for push in turn if push is not None]


async def empty(db: Database) -> None:
    tables = SQLModel.metadata.sorted_tables
    async with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(tables):
            await connection.execute(delete(table))
        sequences = await connection.execute(
            text("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")
        )
        if sequences.first() is not None:
            await connection.execute(text("DELETE FROM sqlite_sequence"))


async def seed(db: Database) -> None:
    async with db.session() as session:
        andy = Manager(name="Андрей", pbx_login="andy", telegram_user_id=500, on_duty=True)
        session.add(andy)
        session.add(Manager(name="Борис", pbx_login="bob", telegram_user_id=501))
        await session.flush()
        known = await create_client(session, phone=KNOWN)
        known.name, known.responsible_manager_id = "Анна", andy.id
        session.add(known)


async def rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows in id order, times left out (they differ between the runs)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if not _timed(c)]
            keys = list(table.primary_key.columns)
            result = await connection.execute(select(*columns).order_by(*keys))
            found[table.name] = [dict(row._mapping) for row in result]
    return found


def _timed(column: Column[Any]) -> bool:
    kind = column.type
    return isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime)


async def decide(db: Database, pipeline: CallPipeline) -> tuple[list[int], dict[str, Any]]:
    """Empty the database, seed it, apply the pushes in slices (the sizes the inbox picks:
    4, 8, …) with this pipeline; the slices' sizes and the rows."""
    await empty(db)
    await seed(db)
    inbox = CallInbox(db, pipeline, {PROVIDER: parse_call_push}, slice_seconds=600)
    await inbox.start(process=False)
    for fields in interleaved():
        await inbox.submit(PROVIDER, fields, dedup_key(fields), command=fields["cmd"])
    await inbox.drain(process=False)
    slices = []
    while handled := await inbox.process_once():
        slices.append(handled)
    await inbox.stop()
    return slices, await rows(db)


async def app_pipeline(
    db: Database, make_client: AppFactory, fake_telegram: FakeTelegram
) -> CallPipeline:
    """The real app's call pipeline, its steps wired; the app's own inbox stopped (it applies
    nothing of the test). The web role: the send queue's loops do not run."""
    client = await make_client(
        db,
        role=Role.WEB,
        telegram_token=TOKEN,
        telegram_api_url=fake_telegram.url,
        telegram_managers_chat_id=GROUP,
        telegram_escalate_after=10,
    )
    inbox = client.server.app[CALLS].inbox  # type: ignore[attr-defined]
    await inbox.stop(grace_seconds=0)
    pipeline: CallPipeline = inbox.pipeline
    return pipeline


async def test_a_slice_decided_set_wise_stores_what_one_by_one_stores(
    any_db: Database, make_client: AppFactory, fake_telegram: FakeTelegram
) -> None:
    pipeline = await app_pipeline(any_db, make_client, fake_telegram)
    assert pipeline.steps.leads is not None and pipeline.steps.notes is not None
    assert hasattr(pipeline.steps.leads, "decide_many")
    assert hasattr(pipeline.steps.notes, "decide_many")

    slices, batched = await decide(any_db, pipeline)
    reference = OneByOne(any_db, pipeline.steps)
    same_slices, one_by_one = await decide(any_db, reference)

    assert slices == same_slices and slices[0] == 4  # the first slice holds all three calls
    assert sum(slices) == len(interleaved())
    # What the steps decided is there: leads of the calls, flags, the notes and alerts.
    # The known client's second call is not a first-time caller: no lead of its own.
    assert sorted(lead["call_id"] for lead in batched["leads"]) == [1, 2]
    assert [c["first_time_caller"] for c in batched["calls"]] == [True, True, False]
    deliveries = batched["telegram_deliveries"]
    assert {d["target"] for d in deliveries} == {"topic", "chat"}
    assert any(d["method"] == "escalate" for d in deliveries)
    assert batched == one_by_one


async def test_a_slice_s_alerts_wake_the_sender_with_the_sends_each_alert_takes(
    any_db: Database, make_client: AppFactory, fake_telegram: FakeTelegram
) -> None:
    """A ringing call wakes the sender at once, naming each alert's chat and the fewest sends
    an alert there takes: the sender skips a pass no chat's budget could serve (a new
    caller's topic is still to be made: three sends; a known client's, or a private chat:
    one)."""
    pipeline = await app_pipeline(any_db, make_client, fake_telegram)
    notes = pipeline.steps.notes
    assert isinstance(notes, TopicNotifier)
    wakes: list[dict[str, Any]] = []
    notes._wake = lambda **wake: wakes.append(wake)  # the sender's wake, as the app wires it
    await empty(any_db)
    await seed(any_db)
    ours = CallInbox(any_db, pipeline, {PROVIDER: parse_call_push}, slice_seconds=600)
    await ours.start(process=False)
    ringing = [
        call("inbound_answered", "WAKE-1", KNOWN)[0],  # a known client: andy is responsible
        call("inbound_missed", "WAKE-2", "79169998877")[0],  # a new caller: andy is on duty
    ]
    assert all(push["type"] == "INCOMING" for push in ringing)
    for fields in ringing:  # as the webhook stores them: live, not history
        push = parse_push(fields)
        assert isinstance(push, EventPush)
        await ours.submit(
            PROVIDER, fields, dedup_key(fields), command="event", event_type=push.type, push=push
        )
    await ours.drain()
    await ours.stop()

    urgent = [wake["alerts"] for wake in wakes if wake["urgent"]]
    assert sorted(urgent, key=lambda alerts: alerts[GROUP]) == [
        {GROUP: 1, 500: 1},
        {GROUP: 3, 500: 1},
    ]
