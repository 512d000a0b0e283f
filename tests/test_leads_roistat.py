"""Call and form leads reach the fake Roistat over real HTTP: exact queries, retries, updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storage.db import Database
from storage.models import CallAttribution
from telephony.leads.outbox import claim
from tests.conftest import API_TOKEN
from tests.fakes.roistat import API_KEY
from tests.leads_harness import Harness, HarnessFactory
from tests.megafon_replay import load, push, replay

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TEMPLATES = """
[leads.roistat]
title = "Call {caller}"
comment = "{callDate} {status} talk {talkDuration}s by {manager}: {recordLink}"
order_creation_method = "Звонок"
[leads.roistat.fields]
source = "{utmSource}"
city = "{city}"
"""
RECORD = (
    "https://vats123456.megapbx.ru/api/v2/call-records/record/2017-07-03/"
    "5c0e1e0a-1c2b-4d3e-9f00-0a1b2c3d4e5f/79101234567.mp3"
)


async def call_detail(h: Harness, phone: str) -> dict[str, Any]:
    listing = await (await h.client.get(f"/api/v1/calls?phone={phone}", headers=AUTH)).json()
    call_id = listing["calls"][0]["id"]
    detail: dict[str, Any] = await (
        await h.client.get(f"/api/v1/calls/{call_id}", headers=AUTH)
    ).json()
    return detail


async def test_answered_call_becomes_one_lead_with_the_exact_php_query(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db, TEMPLATES)
    await replay(h.client, load("inbound_answered"))
    assert await h.drain() == 1

    [lead] = h.roistat.leads()
    assert lead.method == "GET"
    assert lead.raw_query == (
        "roistat=nocookie&key=test-roistat-key&title=Call+79101234567"
        "&comment=2017-07-03+15%3A11%3A10+Success+talk+124s+by+andy%3A+"
        "https%3A%2F%2Fvats123456.megapbx.ru%2Fapi%2Fv2%2Fcall-records%2Frecord%2F2017-07-03%2F"
        "5c0e1e0a-1c2b-4d3e-9f00-0a1b2c3d4e5f%2F79101234567.mp3"
        "&name=&email=&phone=79101234567"
        "&order_creation_method=%D0%97%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA"
        "&sync=0&is_need_check_order_in_processing=1"
        "&is_need_check_order_in_processing_append=1&is_skip_sending=0"
        "&fields%5Bsource%5D=%7ButmSource%7D&fields%5Bcity%5D=%7Bcity%7D"
        "&fields%5Btrubka_lead_id%5D=trubka-1"
    )
    [row] = await h.rows("roistat")
    assert row.status == "done" and row.attempts == 1
    [stored] = await h.leads_rows()
    assert stored.source == "call" and stored.roistat_lead_id == "1001"
    call = await call_detail(h, "79101234567")
    assert call["flags"] == {"first_time_caller": True, "targeted": True, "suspected_fraud": None}

    # The same pushes again: nothing new is queued or sent.
    await replay(h.client, load("inbound_answered"))
    assert await h.drain() == 0
    assert len(h.roistat.leads()) == 1
    assert 'trubka_outbox_delivered_total{sink="roistat"} 1.0' in await h.metrics_text()
    assert 'trubka_leads_created_total{source="call"} 1.0' in await h.metrics_text()


async def test_call_tracking_attribution_fills_the_visit_and_utm(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db, TEMPLATES, roistat_api_key=API_KEY, roistat_project="12345")
    pushes = load("inbound_answered")
    await replay(h.client, pushes[:-1])
    call = await call_detail(h, "79101234567")
    async with db.session() as session:
        session.add(
            CallAttribution(
                call_id=call["id"],
                roistat_visit="777001",
                utm_source="yandex",
                utm_medium="cpc",
                source="ya_direct",
                metrika_client_id="1699999999123456789",
            )
        )
    await replay(h.client, pushes[-1:])
    await h.drain()

    [lead] = h.roistat.leads()
    assert lead.params["roistat"] == "777001"
    assert lead.params["fields[source]"] == "yandex"
    assert lead.params["fields[city]"] == "{city}"  # left for Roistat to fill from the visit
    [phone_call] = h.roistat.calls()
    assert phone_call.raw_query == "project=12345"
    assert phone_call.headers["Api-key"] == API_KEY
    assert phone_call.json == {
        "callee": "74950001122",
        "caller": "79101234567",
        "date": "2017-07-03T12:11:10+0000",
        "duration": 124,
        "answer_duration": 124,
        "status": "ANSWER",
        "visit_id": "777001",
        "marker": "ya_direct",
        "order_id": None,
        "save_to_crm": "0",
        "comment": RECORD,
    }


async def test_roistat_down_then_recovering_delivers_exactly_once(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db, "[leads.roistat]\ntimeout = 0.3\n")
    h.roistat.timeout_seconds = 1.0
    h.roistat.fail_next(500, "timeout", "error", 429)
    await replay(h.client, load("inbound_answered"))

    assert await h.drain() == 1  # first attempt: 500
    [row] = await h.rows("roistat")
    assert row.status == "pending" and row.attempts == 1 and "HTTP 500" in (row.last_error or "")
    # Backoff: between half and all of the 10 s base delay, nothing is due before.
    wait = (row.next_attempt_at - h.clock.now()).total_seconds()
    assert 5 <= wait <= 10
    assert await h.drain() == 0

    for expected_error in ("did not answer in time", "internal_error", "HTTP 429"):
        h.clock.advance(3600)
        assert await h.drain() == 1
        [row] = await h.rows("roistat")
        assert row.status == "pending" and expected_error in (row.last_error or "")

    h.clock.advance(3600)
    assert await h.drain() == 1
    h.clock.advance(3 * 86400)
    assert await h.drain() == 0

    assert len(h.roistat.leads()) == 5
    successes = [r for r in h.roistat.leads() if r.params.get("key")]
    [row] = await h.rows("roistat")
    assert row.status == "done" and row.attempts == 5 and row.last_error is None
    assert len(successes) == 5  # every attempt carried the key; only the last was accepted
    [stored] = await h.leads_rows()
    assert stored.roistat_lead_id == "1001"
    metrics = await h.metrics_text()
    assert 'trubka_outbox_failures_total{sink="roistat"} 4.0' in metrics
    assert 'trubka_outbox_delivered_total{sink="roistat"} 1.0' in metrics


async def test_a_restart_mid_retries_loses_and_doubles_nothing(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    first = await make_harness(any_db)
    first.roistat.fail_next(503)
    await replay(first.client, load("inbound_answered"))
    await replay(first.client, load("inbound_missed"))
    assert await first.drain() == 2  # one failed (503), one delivered
    # A third row is claimed, then the process dies before finishing it.
    await first.client.post(
        "/api/v1/leads", json={"phone": "+7 903 111-22-33", "name": "Ира"}, headers=AUTH
    )
    [stuck] = await claim(
        any_db, ["roistat"], now=first.clock.now(), limit=5, lease=timedelta(minutes=5)
    )
    await first.client.close()

    second = await make_harness(any_db)  # a new process on the same database
    second.clock.advance(60)
    assert await second.drain() == 1  # the failed row; the stuck one is still leased
    assert len(second.roistat.leads()) == 3
    second.clock.advance(301)
    assert await second.drain() == 1  # the lease ran out: the stuck row is delivered
    second.clock.advance(86400)
    assert await second.drain() == 0

    phones = sorted(r.params["phone"] for r in second.roistat.leads() if r.params)
    assert phones == ["79031112233", "79101234567", "79101234567", "79169998877"]
    rows = await second.rows("roistat")
    assert [r.status for r in rows] == ["done", "done", "done"]
    assert stuck.id == rows[2].id


async def test_recording_arriving_after_the_lead_is_appended_with_messages_add(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(
        any_db,
        'create_on = "start"\n[leads.roistat]\nmessage_title = "Итог"\n'
        'message = "{status}, {talkDuration} s: {recordLink}"\n',
    )
    pushes = load("inbound_answered")
    await replay(h.client, pushes[:2])  # contact + INCOMING: the lead is made now
    assert await h.drain() == 1
    [lead] = h.roistat.leads()
    assert "Success" not in lead.params["comment"] and "mp3" not in lead.params["comment"]

    await replay(h.client, pushes[2:])
    assert await h.drain() == 1
    [message] = h.roistat.messages()
    assert message.params == {
        "key": "test-roistat-key",
        "id": "1001",
        "title": "Итог",
        "message": f"Success, 124 s: {RECORD}",
    }
    assert message.raw_query.startswith(
        "key=test-roistat-key&id=1001&title=%D0%98%D1%82%D0%BE%D0%B3"
    )
    await replay(h.client, pushes)  # duplicates: no second message
    assert await h.drain() == 0


async def test_message_waits_for_the_lead_to_reach_roistat(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db, 'create_on = "start"\n')
    h.roistat.fail_next(500)
    await replay(h.client, load("inbound_answered"))
    await h.drain()  # the lead fails, the message has no Roistat id yet
    assert [r.status for r in await h.rows()] == ["pending", "pending"]
    assert "waiting for the lead" in ((await h.rows("roistat_message"))[0].last_error or "")
    h.clock.advance(3600)
    await h.drain()
    h.clock.advance(3600)
    await h.drain()
    assert len(h.roistat.messages()) == 1
    assert h.roistat.messages()[0].params["id"] == "1001"


async def test_form_lead_with_callback_is_sent_with_its_fields(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db)
    body = {
        "phone": "8 (910) 123-45-67",
        "name": "Анна",
        "email": "anna@example.ru",
        "comment": "Перезвоните после 18:00",
        "roistat_visit": "555123",
        "metrika_client_id": "1700000000111",
        "utm_source": "yandex",
        "is_need_callback": True,
    }
    response = await h.client.post("/api/v1/leads", json=body, headers=AUTH)
    assert response.status == 201
    answer = await response.json()
    assert set(answer) == {"lead_id", "client_id"}
    assert await h.drain() == 1

    [lead] = h.roistat.leads()
    assert lead.raw_query == (
        "roistat=555123&key=test-roistat-key"
        "&title=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0"
        "+%2B7+910+123-45-67"
        "&comment=%D0%9F%D0%B5%D1%80%D0%B5%D0%B7%D0%B2%D0%BE%D0%BD%D0%B8%D1%82%D0%B5+"
        "%D0%BF%D0%BE%D1%81%D0%BB%D0%B5+18%3A00"
        "&name=%D0%90%D0%BD%D0%BD%D0%B0&email=anna%40example.ru&phone=79101234567"
        "&order_creation_method=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0+%D1%81+"
        "%D1%81%D0%B0%D0%B9%D1%82%D0%B0"
        "&is_need_callback=1&sync=0&is_need_check_order_in_processing=1"
        "&is_need_check_order_in_processing_append=1&is_skip_sending=0"
        "&fields%5Btrubka_lead_id%5D=trubka-1"
    )
    person = await (
        await h.client.get(f"/api/v1/clients/{answer['client_id']}", headers=AUTH)
    ).json()
    assert person["phone"] == "79101234567" and person["name"] == "Анна"


async def test_form_lead_validation_and_idempotency(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db)
    post = h.client.post
    bad_phone = await post("/api/v1/leads", json={"phone": "12"}, headers=AUTH)
    assert bad_phone.status == 400 and (await bad_phone.json())["field"] == "phone"
    nothing = await post("/api/v1/leads", json={"name": "x"}, headers=AUTH)
    assert nothing.status == 400
    assert (await post("/api/v1/leads", data="[", headers=AUTH)).status == 400
    flag = await post(
        "/api/v1/leads", json={"email": "a@b.c", "is_need_callback": "yes"}, headers=AUTH
    )
    assert flag.status == 400 and (await flag.json())["field"] == "is_need_callback"
    assert (await post("/api/v1/leads", json={"phone": "79101234567"})).status == 401

    key = {**AUTH, "Idempotency-Key": "form-42"}
    first = await post(
        "/api/v1/leads", json={"phone": "79101234567", "is_need_callback": 0}, headers=key
    )
    again = await post(
        "/api/v1/leads", json={"phone": "79101234567", "is_need_callback": 0}, headers=key
    )
    assert first.status == 201 and again.status == 200
    assert (await first.json()) == (await again.json())
    await h.drain()
    [lead] = h.roistat.leads()
    assert lead.params["is_need_callback"] == "0"
    assert lead.params["roistat"] == "nocookie"


async def test_form_attribution_is_used_for_the_same_clients_later_call(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db)
    await h.client.post(
        "/api/v1/leads",
        json={"phone": "79101234567", "roistat_visit": "424242", "utm_source": "vk"},
        headers=AUTH,
    )
    await replay(h.client, load("inbound_answered"))
    await h.drain()
    visits = [r.params["roistat"] for r in h.roistat.leads()]
    assert visits == ["424242", "424242"]


async def test_rules_first_time_targeted_missed_and_skipped_numbers(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(
        db, 'targeted_only = true\ntargeted_seconds = 30\nskip_numbers = ["+7 916 999-88-77"]\n'
    )
    await replay(h.client, load("inbound_missed"))  # a skipped number (and missed)
    short = load("inbound_answered")
    short[-1] = {**short[-1], "duration": "12"}
    await replay(h.client, short)  # answered, but 12 s: not targeted
    assert await h.drain() == 0
    call = await call_detail(h, "79101234567")
    assert call["flags"] == {"first_time_caller": True, "targeted": False, "suspected_fraud": None}

    # The same number again, long talk: targeted, but no longer a first-time caller.
    again = [{**p, "callid": "SECOND-CALL"} for p in load("inbound_answered")]
    await replay(h.client, again)
    assert await h.drain() == 0
    assert h.roistat.leads() == []
    listing = await (await h.client.get("/api/v1/calls?phone=79101234567", headers=AUTH)).json()
    second = await (
        await h.client.get(f"/api/v1/calls/{listing['calls'][0]['id']}", headers=AUTH)
    ).json()
    assert second["flags"] == {
        "first_time_caller": False,
        "targeted": True,
        "suspected_fraud": None,
    }


async def test_missed_calls_can_be_left_out_and_any_caller_let_in(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db, "include_missed = false\nfirst_time_only = false\n")
    await replay(h.client, load("inbound_missed"))
    await replay(h.client, load("inbound_answered"))
    await replay(h.client, [{**p, "callid": "AGAIN"} for p in load("inbound_answered")])
    await h.drain()
    assert [r.params["phone"] for r in h.roistat.leads()] == ["79101234567", "79101234567"]


async def test_only_tracking_numbers(make_harness: HarnessFactory, db: Database) -> None:
    h = await make_harness(
        db, 'tracking_numbers_only = true\ntracking_numbers = ["+7 495 000-11-22"]\n'
    )
    other = [
        {**p, "diversion": "74959999999"} if "diversion" in p else p for p in load("inbound_missed")
    ]
    await replay(h.client, other)
    await replay(h.client, load("inbound_answered"))  # diversion 74950001122 is tracked
    await h.drain()
    assert [r.params["phone"] for r in h.roistat.leads()] == ["79101234567"]


async def test_serve_runs_the_worker_in_the_background(
    make_harness: HarnessFactory, db: Database
) -> None:
    import asyncio

    h = await make_harness(db, workers=True)
    status, _ = await push(h.client, load("inbound_answered")[-1])
    assert status == 200
    await asyncio.wait_for(h.roistat.received.wait(), timeout=10)
    assert [r.params["phone"] for r in h.roistat.leads()] == ["79101234567"]
    await h.client.close()  # stop the loops before the database fixture goes away


async def test_a_sink_error_is_retried_not_lost(make_harness: HarnessFactory, db: Database) -> None:
    h = await make_harness(db, "[leads.outbox]\ngive_up_after_hours = 1\nbase_delay = 600\n")
    h.roistat.fail_next(*([500] * 20))
    await replay(h.client, load("inbound_answered"))
    await h.drain()
    for _ in range(10):
        h.clock.advance(1200)
        await h.drain()
    [row] = await h.rows("roistat")
    assert row.status == "dead" and "HTTP 500" in (row.last_error or "")
    assert 'trubka_outbox_dead_total{sink="roistat"} 1.0' in await h.metrics_text()
    # 600 s base, doubling, capped at 30 min, jittered: 3 or 4 attempts fit in the hour.
    assert 3 <= len(h.roistat.leads()) <= 4


async def test_a_call_stored_while_the_observer_never_ran_is_decided_at_start(
    make_harness: HarnessFactory, db: Database
) -> None:
    from telephony.calls.inbox import CallInbox
    from telephony.calls.pipeline import CallPipeline
    from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push

    fields = load("inbound_answered")[-1]
    # Stored and applied by a process that stopped before its observers ran.
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await inbox.start()
    await inbox.submit(PROVIDER, fields, dedup_key(fields), command="history")
    await inbox.drain()
    await inbox.stop()
    h = await make_harness(db)
    assert await h.leads.service.sweep() == 1
    assert await h.leads.service.sweep() == 0
    await h.drain()
    assert [r.params["phone"] for r in h.roistat.leads()] == ["79101234567"]


async def test_a_repeat_after_roistat_answered_too_late_is_recognised_by_roistat(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    """Roistat answers after our timeout (or we crash before committing its answer): the lead
    is sent again, with the same stable id, and Roistat's duplicate check keeps one deal."""
    # Our timeout long enough for the request to reach Roistat on a busy machine (0.3 s did
    # not always: the client gave up before Roistat had read it, so Roistat never stored it).
    h = await make_harness(any_db, "[leads.roistat]\ntimeout = 1.0\n")
    h.roistat.timeout_seconds = 1.5
    h.roistat.fail_next("timeout")  # it is stored by Roistat, but its answer comes too late
    await replay(h.client, load("inbound_answered"))
    assert await h.drain() == 1
    [row] = await h.rows("roistat")
    assert row.status == "pending" and "did not answer in time" in (row.last_error or "")

    h.clock.advance(3600)
    assert await h.drain() == 1
    first, second = h.roistat.leads()
    assert first.params["fields[trubka_lead_id]"] == second.params["fields[trubka_lead_id]"]
    assert second.params["is_need_check_order_in_processing"] == "1"
    assert len(h.roistat.deals) == 1  # one deal in Roistat
    [stored] = await h.leads_rows()
    assert stored.roistat_lead_id == h.roistat.deals[first.params["fields[trubka_lead_id]"]]
