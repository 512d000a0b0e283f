"""Scenarios end to end: the shipped file, every trigger and action, durable waits — through
the real app, the fake PBX and the fake Bot API over HTTP, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from telephony.events import LeadInfo
from telephony.infra.clock import FakeClock
from tests.conftest import AppClient
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import FakeTelegram
from tests.megafon_replay import load
from tests.scenario_support import (
    AUTH,
    EXAMPLES,
    FRIDAY_19,
    MONDAY_9,
    Harness,
    jobs,
    start_app,
)
from tests.telegram_updates import CLIENT_USER, message

Start = Callable[..., Awaitable[Harness]]
MISSED = "79169998877"  # the phone of tests/fixtures/megafon/inbound_missed.yaml
ANSWERED = "79101234567"  # … of inbound_answered.yaml (andy answers)
DUTY = "admin@vats123456.megapbx.ru"


@pytest.fixture
def start(
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
) -> Start:
    async def factory(db: Database, scenarios: str | Path = EXAMPLES, **kwargs: Any) -> Harness:
        return await start_app(
            db, tmp_path, app_clients, fake_pbx, fake_telegram, scenarios, **kwargs
        )

    return factory


def with_phone(pushes: list[dict[str, str]], phone: str, suffix: str = "") -> list[dict[str, str]]:
    return [{**p, "phone": phone, "callid": p["callid"] + suffix} for p in pushes]


# --- the shipped scenarios ------------------------------------------------------------------


async def test_missed_call_gets_a_message_then_a_callback_after_15_minutes(
    start: Start, db: Database
) -> None:
    h = await start(db)
    await h.share_phone("+7 916 999-88-77")
    await h.replay(load("inbound_missed"))

    assert h.to_client()[-1].startswith("Мы пропустили ваш звонок…")
    person = await h.person(MISSED)
    assert "Мы пропустили ваш звонок… Перезвоним" in " ".join(await h.dialog(person["id"]))
    # Managers see in the client's topic what the bot wrote.
    assert any("🤖 Сценарий «missed call follow-up» → клиенту" in t for t in h.in_group())
    assert h.makecalls() == []

    await h.advance(14)
    assert h.makecalls() == []
    await h.advance(1)
    # Nobody is responsible for this client yet: the duty manager is called.
    assert h.makecalls() == [{"phone": MISSED, "user": DUTY}]
    await h.advance(60)
    assert len(h.makecalls()) == 1  # once
    assert [j.status for j in await jobs(db)] == ["done"]


async def test_the_callback_goes_to_the_responsible_manager(start: Start, db: Database) -> None:
    h = await start(db)
    await h.replay(load("inbound_answered"))  # andy talks to the client: he is responsible
    await h.replay(with_phone(load("inbound_missed"), ANSWERED))
    await h.advance(15)
    assert h.makecalls() == [{"phone": ANSWERED, "user": "andy"}]


async def test_a_client_without_messenger_gets_no_message_but_the_callback(
    start: Start, db: Database
) -> None:
    h = await start(db)
    await h.replay(load("inbound_missed"))
    assert h.to_client() == []
    await h.advance(15)
    assert h.makecalls() == [{"phone": MISSED, "user": DUTY}]


async def test_a_successful_call_meanwhile_cancels_the_wait(start: Start, db: Database) -> None:
    h = await start(db)
    await h.replay(load("inbound_missed"))
    await h.advance(5)
    # The client calls again and andy answers.
    await h.replay(with_phone(load("inbound_answered"), MISSED))
    await h.advance(15)
    assert h.makecalls() == []
    [job] = await jobs(db)
    assert job.status == "cancelled"
    assert job.error == "no longer holds: if[1] since.successful_calls: {'equals': 0}"


async def test_a_missed_call_after_hours_is_called_back_when_work_starts(
    start: Start, db: Database
) -> None:
    h = await start(db, at=FRIDAY_19)
    await h.replay(load("inbound_missed"))
    await h.advance(15)
    await h.advance(12 * 60)  # Saturday 07:15: not yet (Saturday opens at 10:00)
    assert h.makecalls() == []
    await h.at(FRIDAY_19.replace(day=28, hour=10, minute=0))  # Saturday 10:00
    assert h.makecalls() == [{"phone": MISSED, "user": DUTY}]


async def test_a_site_form_asking_for_a_callback_is_called_at_once_in_working_hours(
    start: Start, db: Database
) -> None:
    h = await start(db)
    await h.replay(load("inbound_missed"))  # a known client (and their own missed-call rule)
    person = await h.person(MISSED)
    lead = LeadInfo("form", person["id"], lead_id=1, fields={"is_need_callback": True})
    # What the leads room calls after storing a form lead (POST /api/v1/leads).
    await h.tell_lead(lead)
    await h.settle()
    assert h.makecalls() == [{"phone": MISSED, "user": DUTY}]
    # A form without the callback flag calls nobody.
    plain = LeadInfo("form", person["id"], lead_id=2, fields={"is_need_callback": False})
    await h.tell_lead(plain)
    await h.settle()
    assert len(h.makecalls()) == 1


async def test_a_form_posted_to_the_leads_api_with_a_callback_is_called_back(
    start: Start, db: Database
) -> None:
    """The whole path: the site posts a form, the leads room stores it and tells the scenarios,
    the shipped rule calls the client through the PBX."""
    h = await start(db)
    form = {"phone": "8 (912) 345-67-89", "name": "Ирина", "is_need_callback": True}
    response = await h.client.post("/api/v1/leads", json=form, headers=AUTH)
    assert response.status == 201, await response.text()
    created = await response.json()
    await h.settle()
    assert h.makecalls() == [{"phone": "79123456789", "user": DUTY}]

    plain = {"phone": "+7 912 000-11-22", "name": "Пётр", "is_need_callback": False}
    assert (await h.client.post("/api/v1/leads", json=plain, headers=AUTH)).status == 201
    await h.settle()
    assert len(h.makecalls()) == 1  # no callback asked, nobody called
    person = await h.get(f"/api/v1/clients/{created['client_id']}")
    assert person["phone"] == "79123456789"


async def test_a_site_form_after_hours_is_called_when_the_next_working_day_starts(
    start: Start, db: Database
) -> None:
    h = await start(db, at=FRIDAY_19.replace(day=28, hour=16))  # Saturday 16:00, closed
    await h.replay(load("inbound_missed"))
    person = await h.person(MISSED)
    await h.tell_lead(LeadInfo("form", person["id"], fields={"is_need_callback": True}))
    await h.settle()
    await h.advance(15)  # the missed-call rule's callback is also waiting for Monday
    assert h.makecalls() == []
    await h.at(MONDAY_9)
    calls = h.makecalls()
    assert calls[0] == {"phone": MISSED, "user": DUTY}
    # The missed-call rule sees the form's callback (if it was answered it would cancel);
    # here the PBX has not reported it yet, so both callbacks go out, one each.
    assert len(calls) == 2


async def test_a_call_me_message_is_shown_to_the_managers(start: Start, db: Database) -> None:
    h = await start(db)
    await h.share_phone("+7 916 999-88-77")
    await h.feed(message(CLIENT_USER, "Перезвоните мне после обеда", name="Ольга"))
    assert "📞 Клиент просит перезвонить: «Перезвоните мне после обеда»" in h.in_group()
    person = await h.person(MISSED)
    assert person["variables"]["wants_callback"] == "yes"


# --- durability -----------------------------------------------------------------------------


async def test_a_pending_wait_survives_a_restart(
    start: Start, db: Database, app_clients: list[AppClient]
) -> None:
    first = await start(db)
    await first.replay(load("inbound_missed"))
    await first.advance(5)
    await app_clients.pop().close()  # the process stops with the wait pending
    assert [j.status for j in await jobs(db)] == ["pending"]

    later = FakeClock(first.clock.now())
    later.advance(20 * 60)
    second = await start(db, clock=later)
    await second.settle()
    assert second.makecalls() == [{"phone": MISSED, "user": DUTY}]
    await second.advance(60)
    assert len(second.makecalls()) == 1


async def test_each_job_runs_once_when_two_processes_share_the_database(
    start: Start, any_db: Database
) -> None:
    one = await start(any_db, telegram=False)
    two = await start(any_db, telegram=False, clock=one.clock)
    await one.replay(load("inbound_missed"))
    one.clock.advance(15 * 60)
    await asyncio.gather(one.engine.run_due(), two.engine.run_due(), one.engine.run_due())
    assert one.makecalls() == [{"phone": MISSED, "user": DUTY}]
    assert [j.status for j in await jobs(any_db)] == ["done"]
