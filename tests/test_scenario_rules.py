"""Every trigger, condition and action through the real app; template and action errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from handlers.telegram import texts
from storage.db import Database
from storage.leads_models import Lead
from storage.models import Client
from storage.scenario_models import ScenarioJob
from telephony.clients import set_variables
from telephony.events import LeadInfo
from tests.conftest import AppClient
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import FakeTelegram
from tests.megafon_replay import load
from tests.scenario_support import FRIDAY_19, Harness, jobs, start_app
from tests.telegram_updates import CLIENT_USER, message

Start = Callable[..., Awaitable[Harness]]
MISSED = "79169998877"
ANSWERED = "79101234567"


@pytest.fixture
def start(
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
) -> Start:
    async def factory(db: Database, scenarios: str, **kwargs: Any) -> Harness:
        return await start_app(
            db, tmp_path, app_clients, fake_pbx, fake_telegram, scenarios, **kwargs
        )

    return factory


async def say(h: Harness, text: str) -> None:
    await h.feed(message(CLIENT_USER, text, name="Ольга"))


MESSAGES = """
rules:
  - name: hello
    on: {message: {command: start}}
    do: [{send_message: "Здравствуйте, {{ client.name }}!"}]
  - name: price
    on: {message: {text: "Цена"}}
    do: [{send_message: "Цены: example.ru/price"}]
  - name: delivery
    on: {message: {regex: "(?i)доставк"}}
    do: [{send_message: "Доставка — 1–2 дня; <b>бесплатно</b> от 3000 ₽"}]
  - name: any message counts
    on: message
    do: [{set_variable: {last_message: "{{ message.text }}"}}]
"""


async def test_message_triggers_text_regex_command_and_any(start: Start, db: Database) -> None:
    h = await start(db, MESSAGES)
    await say(h, "/start")
    assert h.to_client()[-2:] == [texts.CLIENT_HELLO, "Здравствуйте, Ольга!"]
    await say(h, "  цена ")
    assert h.to_client()[-1] == "Цены: example.ru/price"
    await say(h, "Сколько стоит Доставка в Тверь?")
    # The text goes out as written: HTML-escaped for the Bot API's HTML mode.
    assert h.to_client()[-1] == "Доставка — 1–2 дня; &lt;b&gt;бесплатно&lt;/b&gt; от 3000 ₽"
    before = len(h.to_client())
    await say(h, "спасибо")
    assert len(h.to_client()) == before  # no rule for that text
    person = (await h.get("/api/v1/clients/1"))["variables"]
    assert person["last_message"] == "спасибо"
    dialog = await h.dialog(1)
    assert dialog[-2:] == ["Доставка — 1–2 дня; <b>бесплатно</b> от 3000 ₽", "спасибо"]


CALLS = """
rules:
  - name: ringing
    on: {call_event: INCOMING}
    do: [{notify_managers: "Звонит {{ call.phone }}, линия {{ call.diversion }}"}]
  - name: talked
    on: {call_status: Success}
    if: [{call.duration: {gt: 60}}]
    do: [{set_variable: {talked_with: "{{ call.user }}"}}]
  - name: short talk
    on: {call_status: Success}
    if: [{call.duration: {le: 60}}]
    do: [{set_variable: {short: "yes"}}]
  - name: recording
    on: {variable: megafon_record_link}
    do: [{set_variable: {last_record: "{{ variable.value }}"}}]
"""


async def test_call_event_call_status_and_variable_triggers(start: Start, db: Database) -> None:
    h = await start(db, CALLS)
    await h.replay(load("inbound_answered"))
    assert "Звонит 79101234567, линия 74950001122" in h.in_group()
    person = await h.person(ANSWERED)
    assert person["variables"]["talked_with"] == "andy"  # duration 124 s > 60
    assert "short" not in person["variables"]
    assert person["variables"]["last_record"] == person["variables"]["megafon_record_link"]


CHAIN = """
rules:
  - name: mark
    on: {message: {regex: "(?i)хочу"}}
    do:
      - set_variable: {interest: "{{ message.args or message.text }}", stale: null}
  - name: interest set
    on: {variable: interest}
    do:
      - create_lead: {comment: "Интерес: {{ variable.value }}", is_need_callback: true}
  - name: lead made
    on: {lead: scenario}
    if: [{lead.is_need_callback: true}]
    do:
      - notify_managers: "📝 {{ lead.comment }}"
      - megafon_call: {user: "701"}
"""


async def test_set_variable_fires_variable_create_lead_fires_lead(
    start: Start, db: Database
) -> None:
    h = await start(db, CHAIN)
    await h.share_phone("+7 916 999-88-77")
    await say(h, "Хочу диван")
    person = await h.person(MISSED)
    assert person["variables"]["interest"] == "Хочу диван"
    assert "📝 Интерес: Хочу диван" in h.in_group()
    assert h.makecalls() == [{"phone": MISSED, "user": "701"}]
    async with db.session() as session:
        [lead] = (await session.exec(select(Lead))).all()
    assert (lead.source, lead.client_id, lead.comment, lead.is_need_callback) == (
        "scenario",
        person["id"],
        "Интерес: Хочу диван",
        True,
    )


CONDITIONS = """
working_hours: {mon-fri: "09:00-18:00"}
rules:
  - name: vip after hours
    on: message
    if:
      - working_hours: false
      - segment: {one_of: [vip, gold]}
      - score: {ge: 10, lt: 100}
      - message.text: {regex: "^[А-Яа-я ]+$"}
      - any: [{client.name: Ольга}, {client.name: Анна}]
      - not: {blocked: "yes"}
      - unknown_variable: {exists: false}
    do: [{send_message: "Мы ответим утром"}]
"""


async def test_conditions_all_must_hold(start: Start, db: Database) -> None:
    h = await start(db, CONDITIONS, at=FRIDAY_19)
    await h.share_phone("+7 916 999-88-77")

    async def variables(**values: str) -> None:
        async with db.session() as session:
            client = await session.get(Client, 1)
            assert client is not None
            await set_variables(session, client, values)

    await variables(segment="vip", score="15")
    await say(h, "Здравствуйте")
    assert h.to_client()[-1] == "Мы ответим утром"
    count = len(h.to_client())
    for change in ({"score": "100"}, {"segment": "basic"}, {"score": "много"}):
        await variables(**{"segment": "vip", "score": "15", **change})
        await say(h, "Здравствуйте")
        assert len(h.to_client()) == count, change
    await variables(segment="gold", score="10", blocked="yes")
    await say(h, "Здравствуйте")
    assert len(h.to_client()) == count
    await variables(blocked="no")
    await say(h, "Hello")  # the regex wants Cyrillic
    assert len(h.to_client()) == count
    await say(h, "Добрый вечер")
    assert len(h.to_client()) == count + 1
    await h.at(FRIDAY_19.replace(day=30, hour=10))  # Monday morning: working hours
    await say(h, "Добрый день")
    assert len(h.to_client()) == count + 1


WAIT_IF = """
rules:
  - name: nudge
    on: {message: {command: start}}
    do:
      - wait:
          for: 2h
          if: [{since.client_messages: 0}]
      - send_message: "Остались вопросы?"
  - name: gone
    on: {message: {text: "удалите"}}
    do:
      - wait: 30m
      - send_message: "Удалили"
"""


async def test_a_wait_with_its_own_condition_is_cancelled_when_it_fails(
    start: Start, db: Database
) -> None:
    h = await start(db, WAIT_IF)
    await say(h, "/start")
    await h.advance(130)
    assert h.to_client()[-1] == "Остались вопросы?"  # nobody wrote meanwhile

    await say(h, "/start")
    await h.advance(30)
    await say(h, "А сколько стоит?")
    await h.advance(100)
    assert h.to_client().count("Остались вопросы?") == 1
    cancelled = [j for j in await jobs(db) if j.status == "cancelled"]
    assert [j.error for j in cancelled] == [
        "no longer holds: do[0].wait.if[0] since.client_messages: {'equals': 0}"
    ]


async def test_a_rule_removed_from_the_file_cancels_its_waits(
    start: Start, db: Database, app_clients: list[AppClient]
) -> None:
    h = await start(db, WAIT_IF)
    await say(h, "удалите")
    await app_clients.pop().close()
    later = await start(db, "rules: []", clock=h.clock)
    await later.advance(60)
    assert "Удалили" not in later.to_client()
    [job] = [j for j in await jobs(db) if j.rule == "gone"]
    assert (job.status, job.error) == ("cancelled", "the rule is no longer in the scenario file")


BROKEN = """
rules:
  - name: broken
    on: {call_status: Missed}
    do:
      - send_message: "Здравствуйте, {{ vars.first_name }}!"
      - set_variable: {never: "set"}
  - name: sandboxed
    on: {call_status: Missed}
    do: [{notify_managers: "{{ client.__class__.__mro__ }}"}]
  - name: still works
    on: {call_status: Missed}
    do: [{set_variable: {followed_up: "yes"}}]
  - name: pbx refuses
    on: {call_status: Missed}
    do: [{megafon_call: {user: "bob"}}]
"""


async def test_template_and_action_errors_are_reported_and_other_rules_run(
    start: Start, db: Database, fake_pbx: FakePbx
) -> None:
    h = await start(db, BROKEN)
    fake_pbx.fail(400, {"message": "User bob is offline"})
    await h.replay(load("inbound_missed"))
    person = await h.person(MISSED)
    assert person["variables"]["followed_up"] == "yes"
    assert "never" not in person["variables"]  # the broken rule stopped at its error
    notes = [line for line in await h.dialog(person["id"]) if line.startswith("⚠️")]
    assert notes[0] == (
        "⚠️ Сценарий «broken»: ошибка шаблона в do[0].send_message.text: "
        "UndefinedError: 'dict object' has no attribute 'first_name'"
    )
    assert notes[1].startswith("⚠️ Сценарий «sandboxed»: ошибка шаблона в do[0].notify_managers")
    assert "SecurityError: access to attribute '__class__'" in notes[1]
    assert notes[2].startswith("⚠️ Сценарий «pbx refuses»: do[0].megafon_call('79169998877', 'bob')")
    assert "User bob is offline" in notes[2]
    metrics = await (await h.client.get("/metrics")).text()
    assert 'trubka_scenario_errors_total{kind="template",rule="broken"} 1.0' in metrics
    assert 'trubka_scenario_errors_total{kind="action",rule="pbx refuses"} 1.0' in metrics
    assert 'trubka_scenario_jobs_total{outcome="done",rule="still works"} 1.0' in metrics


CALL_LEAD = """
rules:
  - name: call lead
    on: {lead: call}
    if: [{call.status: Missed}]
    do: [{notify_managers: "Лид со звонка {{ call.callid }}, источник {{ lead.utm_source }}"}]
"""


async def test_a_call_lead_sees_its_call(start: Start, db: Database) -> None:
    h = await start(db, CALL_LEAD)
    await h.replay(load("inbound_missed"))
    person = await h.person(MISSED)
    call = (await h.get(f"/api/v1/calls?phone={MISSED}"))["calls"][0]
    # What the leads room calls after making a lead of a call.
    lead = LeadInfo(
        "call", person["id"], lead_id=7, call_id=call["id"], fields={"utm_source": "ya"}
    )
    await h.tell_lead(lead)
    await h.settle()
    assert "Лид со звонка 4F1C2A-MISSED-77, источник ya" in h.in_group()


TWO_STEPS = """
rules:
  - name: two steps
    on: message
    do:
      - send_message: "Первое"
      - send_message: "Второе"
"""


async def test_a_run_cut_short_goes_on_after_its_lease_without_repeating(
    start: Start, db: Database
) -> None:
    h = await start(db, TWO_STEPS)
    await h.feed(message(CLIENT_USER, "привет", name="Ольга"))
    assert h.to_client()[-2:] == ["Первое", "Второе"]
    # A process died after the first action of a run: the job is "running" at step 1.
    async with db.session() as session:
        session.add(
            ScenarioJob(
                rule="two steps",
                client_id=1,
                payload=json.dumps(
                    {"occurrence": {"kind": "message", "value": "x", "client_id": 1}, "mark": {}}
                ),
                step=1,
                status="running",
                lease_until=h.clock.now() + timedelta(minutes=5),
            )
        )
    await h.advance(4)
    assert h.to_client().count("Второе") == 1  # still leased to the dead run
    await h.advance(2)
    assert h.to_client()[-1] == "Второе" and h.to_client().count("Первое") == 1
    assert [j.status for j in await jobs(db)] == ["done", "done"]
