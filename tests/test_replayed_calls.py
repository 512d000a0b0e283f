"""A PBX replaying its history (calls that ended long ago) rings nobody: the replayed call's
lines go to its topic in no alert lane and its INCOMING sends no private ringing alert, while
the same call happening now is an alert — so a replay never holds back a call ringing now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from handlers.web.context import CALLS
from storage.db import Database
from storage.models import Call, Manager
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import ALERT, LANE_NAMES
from tests.conftest import AppFactory
from tests.fakes.telegram import FakeTelegram
from tests.megafon_replay import CRM_TOKEN, load, replay
from tests.telegram_updates import telegram_app_settings


def at(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def missed_call(callid: str, phone: str, start: datetime) -> list[dict[str, str]]:
    pushes = [p for p in load("inbound_missed") if p["cmd"] != "contact"]
    return [
        {**p, "callid": callid, "phone": phone}
        | ({"start": at(start)} if p["cmd"] == "history" else {})
        for p in pushes
    ]


async def lanes_of(db: Database, callid: str) -> list[tuple[str, str, str]]:
    """(target, method, lane name) of every send queued about the call, in order."""
    async with db.read() as session:
        call = (await session.exec(select(Call).where(Call.callid == callid))).one()
        rows = (
            await session.exec(
                select(TelegramDelivery)
                .where(col(TelegramDelivery.call_id) == call.id)
                .order_by(col(TelegramDelivery.id))
            )
        ).all()
    return [(row.target, row.method, LANE_NAMES[row.lane]) for row in rows]


async def test_a_replayed_call_is_no_alert_and_the_same_call_now_is(
    any_db: Database, make_client: AppFactory, fake_telegram: FakeTelegram
) -> None:
    client = await make_client(
        any_db, **telegram_app_settings(fake_telegram.url), telegram_escalate_after=10
    )
    async with any_db.session() as session:  # a manager on duty gets the private alerts
        session.add(Manager(name="Андрей", pbx_login="andy", telegram_user_id=500, on_duty=True))
    now = datetime.now(UTC)
    # The replay piles up while nothing is applied (after an outage), then is applied.
    inbox = client.app[CALLS].inbox
    await inbox._processor.stop()
    for fields in missed_call("REPLAY-1", "79160000001", now - timedelta(hours=3)):
        response = await client.post("/megafon_webhook", data={**fields, "crm_token": CRM_TOKEN})
        assert response.status == 200
    inbox._fetch = 1  # the first slice takes the INCOMING alone, before its call's outcome
    await inbox.drain()
    await replay(client, missed_call("NOW-1", "79160000002", now - timedelta(seconds=20)))

    replayed = await lanes_of(any_db, "REPLAY-1")
    fresh = await lanes_of(any_db, "NOW-1")
    topic_lanes = [lane for target, _, lane in replayed if target == "topic"]
    assert topic_lanes and LANE_NAMES[ALERT] not in topic_lanes
    assert ("chat", "send", "alert") not in replayed  # no private "ringing" alert
    assert ("chat", "escalate", "alert") in replayed  # nobody called them back: escalated
    assert ("topic", "live", "alert") in fresh  # the call ringing now goes first
    assert ("topic", "send", "alert") in fresh  # and so does its missed outcome
    assert ("chat", "send", "alert") in fresh  # the manager on duty is told it rings
