"""One call vocabulary (issue 24): CallOutcome's Python and SQL forms agree on both databases,
and a call the voicemail picked up (ACCEPTED, then a final `Missed`) is missed everywhere — in
the reports, for leads and Metrika, and in Telegram."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import select as select_rows

from storage.db import Database
from storage.models import Call
from telephony.calls.outcome import CallEventType, CallOutcome, CallStatus
from telephony.scenarios.context import call_fields
from tests import conftest
from tests.conftest import AppClient, AppFactory
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.leads_harness import HarnessFactory
from tests.megafon_replay import load, replay
from tests.telegram_updates import ADMIN, GROUP, MANAGER, feed, flush, message
from tests.test_leads_metrika import call_with_attribution
from tests.test_telegram import add_manager, app_of, thread_of

VOICEMAIL = "79261112233"  # tests/fixtures/megafon/inbound_voicemail.yaml
DAY = {"from": "2024-12-02", "to": "2024-12-02"}  # the day of the fixtures' history pushes

# (status, ACCEPTED seen, ended, direction, internal, duration, wait) →
# (answered, missed, terminal, talk seconds)
CASES: list[tuple[tuple[Any, ...], tuple[bool, bool, bool, int]]] = [
    (("Success", True, True, "in", False, 124, 4), (True, False, True, 120)),
    (("Success", False, True, "in", False, 60, None), (True, False, True, 60)),  # no ACCEPTED
    (("Missed", True, True, "in", False, 35, None), (False, True, True, 0)),  # the voicemail
    (("Missed", False, True, "in", False, 17, None), (False, True, True, 0)),
    (("Busy", False, False, "in", False, None, None), (False, True, True, 0)),  # status: final
    (("Missed", False, True, "out", False, 20, None), (False, False, True, 0)),  # not inbound
    (("Missed", False, True, "in", True, 20, None), (False, False, True, 0)),  # internal
    (("Missed", False, True, None, False, 20, None), (False, False, True, 0)),  # no direction
    ((None, True, False, "in", False, None, None), (True, False, False, 0)),  # talking now
    ((None, False, False, "in", False, None, None), (False, False, False, 0)),  # ringing
    ((None, True, True, "in", False, 50, 10), (True, False, True, 40)),  # COMPLETED, no history
    ((None, False, True, "in", False, None, None), (False, True, True, 0)),
    (("Voicemail", True, True, "in", False, 30, None), (False, True, True, 0)),  # unknown status
    (("Success", True, True, "in", False, 5, 9), (True, False, True, 0)),  # never below 0
]


async def test_python_and_sql_forms_agree_on_every_case(any_db: Database) -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    async with any_db.session() as session:
        for n, (facts, _) in enumerate(CASES):
            status, answered, ended, direction, internal, duration, wait = facts
            session.add(Call(
                callid=f"case-{n}", status=status, answered=answered, ended=ended,
                direction=direction, internal=internal, duration=duration, wait=wait,
                created_at=now, updated_at=now,
            ))
    table = Call.__table__  # type: ignore[attr-defined]
    sql = CallOutcome.sql(table)
    query = select(
        table.c.callid, sql.answered, sql.missed, sql.terminal, sql.talk_seconds,
        ~sql.answered, ~sql.missed,
    ).order_by(table.c.id)
    async with any_db.read() as session:
        rows = (await (await session.connection()).execute(query)).all()
        calls = (await session.exec(select_rows(Call).order_by(Call.id))).all()  # type: ignore[arg-type]
    assert len(rows) == len(calls) == len(CASES)
    for (facts, expected), row, call in zip(CASES, rows, calls, strict=True):
        python = CallOutcome.of(call)
        assert (python.answered, python.missed, python.terminal, python.talk_seconds) == expected
        in_sql = (bool(row[1]), bool(row[2]), bool(row[3]), int(row[4]))
        assert in_sql == expected, (facts, row)
        # Never NULL: "not answered" and "not missed" are the complements, not unknown.
        assert row[5] is not None and row[6] is not None, (facts, row)
        assert (bool(row[5]), bool(row[6])) == (not expected[0], not expected[1]), (facts, row)
    unknown = calls[-2].status
    assert isinstance(unknown, CallStatus) and unknown == "Voicemail" and not unknown.known
    assert calls[0].status is CallStatus.SUCCESS and CallStatus.SUCCESS.known


def test_statuses_and_events_a_pbx_adds_are_kept_as_sent() -> None:
    assert CallStatus("NoTrunk") == "NoTrunk" and str(CallStatus("NoTrunk")) == "NoTrunk"
    assert CallEventType("RINGING") == "RINGING" and not CallEventType("RINGING").known
    assert CallStatus("Missed") is CallStatus.MISSED
    assert "Voicemail" not in [s.value for s in CallStatus]  # the listed ones stay the seven


def test_scenarios_see_a_voicemail_as_missed() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    voicemail = Call(
        callid="vm", direction="in", status=CallStatus.MISSED, answered=True, ended=True,
        last_event=CallEventType.COMPLETED, duration=35, created_at=now, updated_at=now,
    )
    fields = call_fields(voicemail, ZoneInfo("Europe/Moscow"))
    assert (fields["answered"], fields["missed"], fields["talk_seconds"]) == (False, True, 0)
    talking = Call(callid="t", direction="in", answered=True, created_at=now, updated_at=now)
    fields = call_fields(talking, ZoneInfo("Europe/Moscow"))
    assert (fields["answered"], fields["missed"], fields["status"]) == (True, False, None)


async def test_a_voicemail_is_missed_in_the_reports_and_the_calls_api(
    client: AppClient, auth: dict[str, str]
) -> None:
    # A conversation on the voicemail's day (inbound_answered's history is dated 2017).
    today = {"start": "20241202T081000Z"}
    await replay(client, [{**p, **today} if p["cmd"] == "history" else p
                          for p in load("inbound_answered")])
    await replay(client, load("inbound_voicemail"))

    async def report(name: str) -> Any:
        response = await client.get(f"/api/v1/reports/{name}", params=DAY, headers=auth)
        assert response.status == 200, await response.text()
        return await response.json()

    calls = await report("calls")
    totals = calls["totals"]
    # Before issue 24 the voicemail counted as answered here (the ACCEPTED flag won): 2 and 0.
    assert (totals["total"], totals["answered"], totals["missed"]) == (2, 1, 1)
    missed = await report("missed")
    assert missed["totals"]["missed"] == 1
    assert missed["totals"]["never"] == 1  # nobody called the voicemail's caller back
    andy = {m["manager"]: m for m in missed["managers"]}["andy"]
    assert (andy["answered"], andy["missed"]) == (1, 1)

    listing = await client.get(f"/api/v1/calls?phone={VOICEMAIL}", headers=auth)
    [call] = (await listing.json())["calls"]
    assert (call["status"], call["answered"], call["missed"], call["last_event"]) == (
        "Missed", False, True, "COMPLETED"
    )


async def test_a_voicemail_is_missed_for_leads_and_metrika(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db, "include_missed = false\nfirst_time_only = false\n")
    await call_with_attribution(h, load("inbound_answered"), metrika_client_id="1")
    await call_with_attribution(h, load("inbound_voicemail"), metrika_client_id="2")
    await h.drain()
    # Missed calls are left out: only the conversation became a lead.
    assert [r.params["phone"] for r in h.roistat.leads()] == ["79101234567"]
    assert len(await h.leads_rows()) == 1

    assert h.leads.metrika is not None
    assert await h.leads.metrika.upload_due() == 2  # rows, in one CSV
    [upload] = h.metrika.uploads
    lines = upload.csv.splitlines()
    # ClientId,DateTime,PhoneNumber,TalkDuration,HoldDuration,CallMissed,…
    voicemail = next(line.split(",") for line in lines if line.startswith("2,"))
    assert voicemail[2:6] == [f"+{VOICEMAIL}", "0", "35", "1"]
    answered = next(line.split(",") for line in lines if line.startswith("1,"))
    assert answered[3:6] == ["124", "0", "0"]


@pytest.fixture
def telegram(fake_telegram: FakeTelegram) -> dict[str, Any]:
    return {
        "telegram_token": TOKEN,
        "telegram_api_url": fake_telegram.url,
        "telegram_managers_chat_id": GROUP,
        "telegram_admin_ids": str(ADMIN),
        "telegram_time_scale": conftest.TELEGRAM_SCALE,
    }


async def test_a_voicemail_is_missed_in_telegram(
    telegram: dict[str, Any], fake_telegram: FakeTelegram, any_db: Database,
    make_client: AppFactory,
) -> None:
    client = await make_client(any_db, **telegram)
    app = app_of(client)
    await replay(client, load("inbound_voicemail"))
    await flush(app)
    thread = thread_of(fake_telegram, "+7 926 111-22-33")
    topic = fake_telegram.in_thread(GROUP, thread)
    # The live message says someone picked up (it did, the voicemail); the outcome says missed,
    # as an alert with a call-back button.
    assert any("ACCEPTED" in (s.text or "") for s in topic)
    alert = next(s for s in topic if "Пропущенный звонок" in (s.text or ""))
    assert "Missed" in (alert.text or "")
    assert alert.reply_markup["inline_keyboard"][0][0]["text"] == "📞 Перезвонить"
    assert not any("Итог звонка" in (s.text or "") for s in topic)

    await add_manager(app)
    await feed(app, message(MANAGER, "/missed"))
    listed = fake_telegram.in_thread(MANAGER, None)[-1].text or ""
    # Before issue 24 the list read the ACCEPTED flag alone and left this call out.
    assert "Пропущенные сегодня" in listed and "+7 926 111-22-33" in listed
