"""GET|POST /novofon_webhook and POST /novofon_calltracking over real HTTP, on SQLite and
PostgreSQL, with signed webhooks replayed from tests/fixtures/novofon; calls placed through
Novofon's callback (POST /api/v1/calls and place_manager_call)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from storage.db import Database
from storage.leads_models import OutboxItem
from storage.models import CallAttribution, Client, Manager
from storage.types import utcnow
from telephony.calls.dialing import Dialers, place_manager_call
from telephony.events import CallUpdate
from telephony.providers.novofon import NovofonClient, webhook_signature
from tests.conftest import AppFactory
from tests.fakes.megafon import FakePbx
from tests.fakes.novofon import KEY, SECRET, FakeNovofon
from tests.megafon_replay import settle
from tests.novofon_replay import by_event, load, replay, send
from tests.test_megafon_webhook import dialog_texts, get, only_call

AppClient = TestClient[web.Request, web.Application]
RECORD_PATH = "/v1/pbx/record/request/"
CALLBACK_PATH = "/v1/request/callback/"


@pytest.fixture
async def app(make_client: AppFactory, any_db: Database, fake_novofon: FakeNovofon) -> AppClient:
    return await make_client(
        any_db, novofon_url=fake_novofon.url, novofon_key=KEY, novofon_secret=SECRET
    )


def signed(fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "Signature": webhook_signature(SECRET, fields)}


async def add_manager(db: Database, **values: Any) -> int:
    async with db.session() as session:
        manager = Manager(**values)
        session.add(manager)
        await session.flush()
        assert manager.id is not None
        return manager.id


async def test_answered_inbound_call(
    app: AppClient, auth: dict[str, str], fake_novofon: FakeNovofon
) -> None:
    answers = await replay(app, load("inbound_answered"))
    assert answers[0] == {}  # an unknown caller: nothing to route

    call = await only_call(app, "79161234567", auth)
    assert call["provider"] == "novofon"
    assert (call["direction"], call["status"], call["answered"]) == ("in", "Success", True)
    assert (call["manager"], call["manager_ext"], call["duration"]) == ("100", "100", 95)
    assert call["diversion"] == "74951234567"  # our number that was dialled
    assert call["started_at"] == "2024-03-15T11:05:10Z"  # 14:05:10 Moscow time
    link = "https://api.novofon.com/v1/pbx/record/download/in_5f8d2c1a9e.mp3"
    assert call["record_link"] == link
    assert [e["type"] for e in call["events"]] == [
        "INCOMING",
        "INCOMING",
        "INCOMING",
        "ACCEPTED",
        "COMPLETED",
        None,
        None,
    ]
    (record_request,) = fake_novofon.calls_to(RECORD_PATH)
    assert record_request.params["pbx_call_id"] == "in_5f8d2c1a9e"
    assert record_request.signed_ok

    assert await dialog_texts(app, call["client_id"], auth) == [
        "novofon_call_event INCOMING",
        "novofon_call_event INCOMING",
        "novofon_call_event INCOMING",
        "novofon_call_event ACCEPTED",
        "novofon_call_event COMPLETED",
        "novofon_call_status Success",
    ]
    person = await get(app, f"/api/v1/clients/{call['client_id']}", auth)
    assert person["responsible"] == "100"
    assert person["variables"] == {
        "novofon_call_direction": "in",
        "novofon_call_ext": "100",
        "novofon_call_id": "in_5f8d2c1a9e",
        "novofon_call_user": "100",
        "novofon_record_link": link,
    }


async def test_missed_inbound_call(app: AppClient, auth: dict[str, str]) -> None:
    await replay(app, load("inbound_missed"))
    call = await only_call(app, "79031112233", auth)
    assert (call["status"], call["answered"], call["ended"]) == ("Missed", False, True)
    assert call["started_at"] == "2024-07-01T06:00:03Z"
    assert await dialog_texts(app, call["client_id"], auth) == [
        "novofon_call_event INCOMING",
        "novofon_call_event INCOMING",
        "novofon_call_status Missed",
    ]
    person = await get(app, f"/api/v1/clients/{call['client_id']}", auth)
    assert person["responsible"] is None


async def test_outgoing_call_to_a_busy_client(app: AppClient, auth: dict[str, str]) -> None:
    await replay(app, load("outbound_busy"))
    call = await only_call(app, "79997776655", auth)
    assert (call["direction"], call["status"], call["manager"]) == ("out", "Busy", "101")
    assert call["started_at"] == "2024-12-31T20:59:30Z"  # the local New Year's Eve, in UTC
    assert await dialog_texts(app, call["client_id"], auth) == [
        "novofon_call_event OUTGOING",
        "novofon_call_status Busy",
    ]


async def test_repeated_webhooks_change_nothing(
    app: AppClient, auth: dict[str, str], fake_novofon: FakeNovofon
) -> None:
    pushes = load("inbound_answered")
    await replay(app, pushes)
    before = await only_call(app, "79161234567", auth)
    dialog_before = await dialog_texts(app, before["client_id"], auth)

    await replay(app, pushes)
    await replay(app, list(reversed(pushes)))

    assert await only_call(app, "79161234567", auth) == before
    assert await dialog_texts(app, before["client_id"], auth) == dialog_before
    assert len(fake_novofon.calls_to(RECORD_PATH)) == 1  # no quota spent on retries


async def test_callback_from_the_api_reports_one_conversation(
    app: AppClient, any_db: Database, auth: dict[str, str], fake_novofon: FakeNovofon
) -> None:
    manager_id = await add_manager(any_db, name="Анна", pbx_ext="100", call_provider="novofon")
    response = await app.post(
        "/api/v1/calls",
        json={"client_phone": "8 (926) 123-45-67", "manager_id": manager_id},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    requested = await response.json()
    assert requested["phone"] == "79261234567"
    assert requested["provider"] == "novofon"
    (request,) = fake_novofon.calls_to(CALLBACK_PATH)
    assert request.query == "format=json&from=100&to=79261234567"
    assert request.signed_ok

    # Novofon reports both legs: NOTIFY_OUT_END and NOTIFY_END of the same pbx_call_id.
    await replay(app, load("callback"))
    call = await only_call(app, "79261234567", auth)
    assert call["id"] == requested["call_id"]  # the pushes attached to the requested call
    assert (call["requested"], call["direction"], call["status"]) == (True, "out", "Success")
    assert (call["manager"], call["duration"], call["callid"]) == ("100", 75, "out_9c3e7a12b4")
    assert call["started_at"] == "2024-03-15T13:20:00Z"
    assert await dialog_texts(app, call["client_id"], auth) == [
        "novofon_call_event OUTGOING",
        "novofon_call_event COMPLETED",
        "novofon_call_status Success",  # once, though two END events said so
    ]


async def test_the_call_button_goes_through_novofon_for_a_novofon_manager(
    any_db: Database, fake_novofon: FakeNovofon, fake_pbx: FakePbx
) -> None:
    """What the Telegram call button does: place_manager_call with the app's dialers."""
    updates: list[CallUpdate] = []

    class Collect:
        async def call_updated(self, update: CallUpdate) -> None:
            updates.append(update)

    novofon = NovofonClient(fake_novofon.url, KEY, SECRET)
    try:
        manager = Manager(name="Анна", pbx_login="anna", pbx_ext="100", call_provider="novofon")
        requested = await place_manager_call(
            any_db, Dialers(novofon=novofon), manager, "+7 926 123-45-67", Collect()
        )
    finally:
        await novofon.close()
    (request,) = fake_novofon.calls_to(CALLBACK_PATH)
    assert (request.params["from"], request.params["to"]) == ("100", "79261234567")
    assert fake_pbx.makecalls() == []  # MegaFon was not asked
    assert requested.pbx_callid is None
    assert [u.trigger for u in updates] == ["requested"]
    assert updates[0].call.provider == "novofon"


async def test_api_call_of_a_megafon_manager_stays_megafon(
    app: AppClient,
    any_db: Database,
    auth: dict[str, str],
    fake_novofon: FakeNovofon,
    fake_pbx: FakePbx,
) -> None:
    manager_id = await add_manager(any_db, name="Андрей", pbx_login="andy", pbx_ext="701")
    response = await app.post(
        "/api/v1/calls",
        json={"client_phone": "79261234567", "manager_id": manager_id},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["provider"] == "megafon"
    (makecall,) = fake_pbx.makecalls()
    assert makecall.json == {"phone": "79261234567", "user": "andy"}
    assert fake_novofon.requests == []


async def test_api_call_errors(
    app: AppClient, any_db: Database, auth: dict[str, str], fake_novofon: FakeNovofon
) -> None:
    manager_id = await add_manager(any_db, name="Анна", pbx_ext="100", call_provider="novofon")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"client_phone": "79261234567", "manager_id": 999}, 404, "Manager not found"),
        ({"client_phone": "79261234567"}, 400, "Invalid parameters"),
        ({"client_phone": "not a phone", "manager_id": manager_id}, 400, "Invalid parameters"),
    ]
    for body, status, error in cases:
        response = await app.post("/api/v1/calls", json=body, headers=auth)
        assert response.status == status, body
        assert (await response.json())["error"] == error
    app_only = await add_manager(
        any_db, name="Борис", pbx_ext="101", call_provider="novofon", call_mode="app"
    )
    response = await app.post(
        "/api/v1/calls", json={"client_phone": "79261234567", "manager_id": app_only}, headers=auth
    )
    assert (response.status, (await response.json())["error"]) == (409, "Manager cannot call")
    fake_novofon.fail(200, {"status": "error", "message": "Недостаточно средств"})
    response = await app.post(
        "/api/v1/calls",
        json={"client_phone": "79261234567", "manager_id": manager_id},
        headers=auth,
    )
    assert response.status == 502
    assert (await response.json())["message"] == "Недостаточно средств"
    assert (await get(app, "/api/v1/calls", auth))["calls"] == []  # nothing left half-made


async def test_wrong_or_missing_signature_is_401(app: AppClient, auth: dict[str, str]) -> None:
    start = load("inbound_answered")[0]
    assert await send(app, start, signature="bm90IGl0") == (401, {"error": "Invalid signature"})
    assert await send(app, start, signature=None) == (401, {"error": "Invalid signature"})
    forged = {**start, "caller_id": "79000000000"}  # the recorded signature no longer fits
    assert (await send(app, forged))[0] == 401
    assert (await get(app, "/api/v1/calls", auth))["calls"] == []


async def test_without_a_configured_secret_nothing_is_accepted(
    make_client: AppFactory, any_db: Database
) -> None:
    app = await make_client(any_db)
    assert (await send(app, load("inbound_answered")[0]))[0] == 401


async def test_zd_echo_is_answered_with_the_bare_token_unsigned(app: AppClient) -> None:
    for path in ("/novofon_webhook", "/novofon_calltracking"):
        response = await app.get(path, params={"zd_echo": "d41d8cd98f00b204e980"})
        assert response.status == 200
        assert await response.text() == "d41d8cd98f00b204e980"
    response = await app.get("/novofon_webhook")
    assert response.status == 400


async def test_notify_start_of_a_known_client_names_them_and_routes_to_their_manager(
    make_client: AppFactory, any_db: Database, fake_novofon: FakeNovofon, auth: dict[str, str]
) -> None:
    app = await make_client(
        any_db,
        novofon_url=fake_novofon.url,
        novofon_key=KEY,
        novofon_secret=SECRET,
        novofon_route_to_responsible=True,
    )
    await replay(app, load("inbound_answered"))  # extension 100 talked: now responsible
    async with any_db.session() as session:
        client = (await session.exec(select(Client))).one()
        client.name = "Ольга Смирнова"
        session.add(client)

    start = dict(load("inbound_answered")[0])
    start.pop("Signature")
    again = signed({**start, "pbx_call_id": "in_next0001", "call_start": "2024-03-16 10:00:00"})
    status, answer = await send(app, again)
    assert (status, answer) == (200, {"caller_name": "Ольга Смирнова", "redirect": "100"})
    # A retry of the same NOTIFY_START gets the same answer and stores nothing new.
    assert await send(app, again) == (200, answer)
    assert len((await get(app, "/api/v1/calls", auth))["calls"]) == 2


async def test_notify_start_is_not_routed_unless_configured(
    app: AppClient, any_db: Database
) -> None:
    await replay(app, load("inbound_answered"))
    async with any_db.session() as session:
        client = (await session.exec(select(Client))).one()
        client.name = "Ольга"
        session.add(client)
    start = {k: v for k, v in load("inbound_answered")[0].items() if k != "Signature"}
    status, answer = await send(app, signed({**start, "pbx_call_id": "in_next0002"}))
    assert (status, answer) == (200, {"caller_name": "Ольга"})


async def test_a_recording_link_not_ready_is_fetched_again_later_by_its_job(
    app: AppClient, auth: dict[str, str], fake_novofon: FakeNovofon, any_db: Database
) -> None:
    pushes = load("inbound_answered")
    await replay(app, pushes[:-1])
    fake_novofon.fail(200, {"status": "error", "message": "Record not found"})
    status, answer = await send(app, pushes[-1])
    assert (status, answer) == (200, {})  # answered at once: the link is a queued job's work
    assert (await only_call(app, "79161234567", auth))["record_link"] is None
    async with any_db.session() as session:
        [job] = (await session.exec(select(OutboxItem))).all()
    assert (job.sink, job.status, job.attempts) == ("novofon_record", "pending", 1)
    assert job.last_error == "Record not found"

    assert await send(app, pushes[-1]) == (200, {})  # Novofon's own retry changes nothing
    async with any_db.session() as session:  # the backoff has passed
        job.next_attempt_at = utcnow()
        session.add(job)
    await settle(app)
    call = await only_call(app, "79161234567", auth)
    assert call["record_link"].endswith("/in_5f8d2c1a9e.mp3")
    assert len([r for r in fake_novofon.requests if r.path == RECORD_PATH]) == 2


async def test_invalid_fields_are_400_naming_the_field(app: AppClient) -> None:
    end = {k: v for k, v in load("inbound_answered")[4].items() if k != "Signature"}
    cases = [
        ({k: v for k, v in end.items() if k != "pbx_call_id"}, "pbx_call_id"),
        ({**end, "call_start": "15.03.2024 14:05"}, "call_start"),
        # Before year 1 in UTC once the account's zone is taken off (was a 500).
        ({**end, "call_start": "0001-01-01 00:00:00"}, "call_start"),
        ({**end, "duration": "-1"}, "duration"),
        ({**end, "caller_id": "not a phone"}, "caller_id"),
        ({k: v for k, v in end.items() if k != "disposition"}, "disposition"),
        ({**end, "internal": "1" * 40}, "internal"),
        ({**end, "pbx_call_id": "in_" + "x" * 300}, "pbx_call_id"),
    ]
    for fields, field in cases:
        status, answer = await send(app, signed(fields))
        assert status == 400, fields
        assert (answer["error"], answer["field"]) == ("Invalid parameters", field)


async def test_other_notifications_are_acknowledged_and_ignored(
    app: AppClient, auth: dict[str, str]
) -> None:
    response = await app.post("/novofon_webhook", data={"event": "SMS", "caller_id": "1"})
    assert (response.status, await response.json()) == (200, {})
    assert (await get(app, "/api/v1/calls", auth))["calls"] == []


async def test_garbage_bodies_are_4xx_not_500(app: AppClient) -> None:
    bodies: list[tuple[bytes, str]] = [
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"event": {"nested": true}}', "application/json"),
    ]
    for body, content_type in bodies:
        for path in ("/novofon_webhook", "/novofon_calltracking"):
            response = await app.post(path, data=body, headers={"Content-Type": content_type})
            assert 400 <= response.status < 500, (path, body, response.status)
            assert "error" in await response.json()


async def attribution_of(db: Database, call_id: int) -> CallAttribution:
    async with db.session() as session:
        row = (
            await session.exec(select(CallAttribution).where(CallAttribution.call_id == call_id))
        ).one()
        return row


async def test_call_tracking_is_merged_into_the_call(
    app: AppClient, any_db: Database, auth: dict[str, str]
) -> None:
    await replay(app, load("inbound_answered"))
    call = await only_call(app, "79161234567", auth)
    notification = {
        "event": "CALL_TRACKING",
        "pbx_call_id": "in_5f8d2c1a9e",
        "caller_id": "79161234567",
        "called_did": "74951234567",
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_campaign": "dlya-biznesa",
        "utm_term": "междугородние перевозки",
        "ym_client_id": "1710500000123456789",
        "ga_client_id": "GA1.2.123.456",
        "url": "https://city2city.ru/dlya-biznesa?utm_source=yandex",
        "tracker_id": "tr-42",
        "region": "Москва",
    }
    response = await app.post("/novofon_calltracking", data=notification)
    assert (response.status, await response.json()) == (200, {"call_id": call["id"]})

    row = await attribution_of(any_db, call["id"])
    assert row.method == "novofon"
    assert (row.utm_source, row.utm_medium, row.utm_campaign) == ("yandex", "cpc", "dlya-biznesa")
    assert row.utm_term == "междугородние перевозки"
    assert row.metrika_client_id == "1710500000123456789"
    assert row.ga_client_id == "GA1.2.123.456"
    assert row.tracking_number == "74951234567"
    assert row.landing_url == "https://city2city.ru/dlya-biznesa?utm_source=yandex"
    # Every field, known or not, is kept raw among the call's events.
    detail = await get(app, f"/api/v1/calls/{call['id']}", auth)
    (raw,) = [e for e in detail["events"] if e["command"] == "call_tracking"]
    assert raw["fields"]["tracker_id"] == "tr-42"
    assert raw["fields"]["region"] == "Москва"

    # A repeat changes nothing; a later notification only fills what is missing.
    assert (await app.post("/novofon_calltracking", data=notification)).status == 200
    later = {**notification, "utm_source": "google", "utm_content": "ad-7"}
    assert (await app.post("/novofon_calltracking", data=later)).status == 200
    row = await attribution_of(any_db, call["id"])
    assert (row.utm_source, row.utm_content) == ("yandex", "ad-7")


async def test_call_tracking_before_the_call_events_still_attaches(
    app: AppClient, any_db: Database, auth: dict[str, str]
) -> None:
    response = await app.post(
        "/novofon_calltracking",
        json={
            "event": "CALL_TRACKING",
            "pbx_call_id": "in_5f8d2c1a9e",
            "caller_id": "79161234567",
            "utm": {"source": "yandex", "campaign": "brand"},
            "visit_id": "v-1",
        },
    )
    assert response.status == 200, await response.text()
    await replay(app, load("inbound_answered"))
    call = await only_call(app, "79161234567", auth)
    row = await attribution_of(any_db, call["id"])
    assert (row.utm_source, row.utm_campaign, row.visit_id) == ("yandex", "brand", "v-1")
    assert call["status"] == "Success"


async def test_call_tracking_token_and_fields(
    make_client: AppFactory, any_db: Database, fake_novofon: FakeNovofon
) -> None:
    app = await make_client(any_db, novofon_calltracking_token="ct-secret")
    body = {"event": "CALL_TRACKING", "pbx_call_id": "in_1", "utm_source": "yandex"}
    response = await app.post("/novofon_calltracking", data=body)
    assert (response.status, await response.json()) == (401, {"error": "Invalid token"})
    response = await app.post("/novofon_calltracking?token=ct-secret", data=body)
    assert response.status == 200
    response = await app.post("/novofon_calltracking?token=ct-secret", data={"utm_source": "x"})
    assert (response.status, (await response.json())["field"]) == (400, "pbx_call_id")
    response = await app.post(
        "/novofon_calltracking?token=ct-secret", data={"event": "SMS", "text": "hi"}
    )
    assert (response.status, await response.json()) == (200, {})


def test_fixture_events_cover_every_notify_event() -> None:
    seen = {
        push["event"]
        for name in ("inbound_answered", "inbound_missed", "callback", "outbound_busy")
        for push in load(name)
    }
    assert seen == {
        "NOTIFY_START",
        "NOTIFY_INTERNAL",
        "NOTIFY_ANSWER",
        "NOTIFY_END",
        "NOTIFY_OUT_START",
        "NOTIFY_OUT_END",
        "NOTIFY_RECORD",
    }
    assert by_event(load("callback"), "NOTIFY_END")["pbx_call_id"] == "out_9c3e7a12b4"
