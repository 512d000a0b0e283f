"""`POST /ct/v1/callback` over real HTTP on SQLite and PostgreSQL, with the shipped scenario file,
the fake PBX, fake Roistat and fake Metrika: the lead carries the visit, the PBX rings the
manager then the visitor, the call is tied to the visit exactly; and callback bombing dials at
most the configured number."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import select

from bot.scenarios.wiring import SCENARIOS
from storage.db import Database
from storage.leads_models import Lead
from storage.tracking_models import TrackingVisit
from storage.widget_models import CallbackRequest
from telephony.tracking.chat_links import code_in, link_key, visit_of, visit_token, whatsapp_link
from tests.conftest import API_TOKEN
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.leads_harness import Harness, HarnessFactory
from tests.megafon_replay import load, replay
from tests.telegram_updates import CLIENT_USER, feed, message
from tests.tracking_support import SITE, visit
from tests.widgets_support import (
    AD,
    DUTY,
    EXAMPLES,
    METRIKA_ID,
    ROISTAT_VISIT,
    ask_callback,
    widget_toml,
)

MOSCOW = ZoneInfo("Europe/Moscow")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW)
SATURDAY_16 = datetime(2026, 11, 21, 16, 0, tzinfo=MOSCOW)
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=MOSCOW)
PHONE = "79004443322"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def _harness(
    make_harness: HarnessFactory, db: Database, extra: str = "", **settings: Any
) -> Harness:
    return await make_harness(db, widget_toml(extra), scenarios=str(EXAMPLES), **settings)


async def _dialled(h: Harness, pbx: FakePbx, expected: int) -> int:
    """Run the due scenario jobs (the app's own scheduler may run them first) until `expected`
    makecalls reached the PBX or two seconds passed; then a little longer, to see no more."""
    engine = h.client.server.app[SCENARIOS]
    for _ in range(100):
        await engine.run_due()
        if len(pbx.makecalls()) >= expected:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    await engine.run_due()
    return len(pbx.makecalls())


async def _ad_visit(h: Harness) -> str:
    status, shown = await visit(
        h.client, AD, metrika_client_id=METRIKA_ID, roistat_visit=ROISTAT_VISIT
    )
    assert status == 200, shown
    return str(shown["visit_id"])


async def test_a_callback_in_working_hours_rings_the_manager_and_carries_the_visit(
    make_harness: HarnessFactory, any_db: Database, fake_pbx: FakePbx
) -> None:
    h = await _harness(make_harness, any_db)
    h.clock.set(MONDAY_10.astimezone(UTC))
    visit_id = await _ad_visit(h)

    status, answer = await ask_callback(h.client, visit_id, "8 (900) 444-33-22", name="Анна")
    assert (status, answer) == (200, {"status": "calling"})
    assert await _dialled(h, fake_pbx, 1) == 1
    [makecall] = fake_pbx.makecalls()
    assert makecall.json == {"phone": PHONE, "user": DUTY}

    # The lead: source callback, the visit's tags and ids, delivered to Roistat.
    [lead] = await h.leads_rows()
    assert (lead.source, lead.phone, lead.name) == ("callback", PHONE, "Анна")
    assert (lead.utm_source, lead.utm_campaign, lead.utm_content) == ("yandex", "spring", "banner")
    assert lead.metrika_client_id == METRIKA_ID and lead.call_id is not None
    assert await h.drain() >= 1
    [sent] = h.roistat.leads()
    assert sent.params["roistat"] == ROISTAT_VISIT
    assert sent.params["phone"] == PHONE
    assert sent.params["is_need_callback"] == "1"
    assert (sent.params["fields[source]"], sent.params["fields[campaign]"]) == ("yandex", "spring")

    # The call the PBX makes is the visit's, exactly; its end goes to Metrika with the ClientID.
    await replay(h.client, [{**p, "phone": PHONE} for p in load("outbound_requested")])
    detail = await (await h.client.get(f"/api/v1/calls/{lead.call_id}", headers=AUTH)).json()
    attribution = detail["attribution"]
    assert attribution["visit_id"] == visit_id
    assert (attribution["confidence"], attribution["matched_by"]) == ("exact", "callback")
    assert attribution["utm_source"] == "yandex"
    assert h.leads.metrika is not None
    assert await h.leads.metrika.upload_due() == 1
    [upload] = h.metrika.uploads
    assert upload.query["client_id_type"] == "CLIENT_ID"
    assert METRIKA_ID in upload.csv and f"+{PHONE}" in upload.csv
    async with any_db.session() as session:
        [request] = (await session.exec(select(CallbackRequest))).all()
    assert (request.status, request.call_id, request.lead_id) == ("dialled", lead.call_id, lead.id)
    metrics = await h.metrics_text()
    assert 'trubka_callback_requests_total{outcome="calling"} 1.0' in metrics

    # The calls report counts the callback beside calls, in the confidence bar as exact.
    period = {"from": "2026-11-23", "to": "2026-11-23"}
    report = await (await h.client.get("/api/v1/reports/calls", params=period, headers=AUTH)).json()
    assert report["ways_in"] == {"calls": 0, "callbacks": 1, "chats": 0}
    assert report["callback"] == {
        "requested": 1,
        "dialled": 1,
        "answered": 1,
        "median_seconds_to_ring": 0,  # the test's clock stands still
    }
    assert report["confidence_all"]["exact"] == report["confidence"]["exact"] + 1
    login = await h.client.post(
        "/reports/login", data={"token": API_TOKEN, "next": "/reports/calls"}
    )
    assert login.status == 200
    page = await (await h.client.get("/reports/calls", params=period)).text()
    assert "Обратный звонок" in page and "обратные звонки" in page


async def test_after_hours_the_visitor_is_promised_the_next_working_time(
    make_harness: HarnessFactory, any_db: Database, fake_pbx: FakePbx
) -> None:
    h = await _harness(make_harness, any_db)
    h.clock.set(SATURDAY_16.astimezone(UTC))  # the shipped hours: Saturday until 15:00
    visit_id = await _ad_visit(h)
    status, answer = await ask_callback(h.client, visit_id, "+7 495 123-45-67")
    assert status == 200
    assert answer == {"status": "scheduled", "at": "2026-11-23T06:00:00Z"}  # Monday 09:00 MSK
    # Asking again before then: the same promise, still one call.
    again = await ask_callback(h.client, visit_id, "8 495 123 45 67", address="8.8.8.8")
    assert again == (200, answer)
    assert await _dialled(h, fake_pbx, 0) == 0
    h.clock.set(MONDAY_9.astimezone(UTC) + timedelta(seconds=1))
    assert await _dialled(h, fake_pbx, 1) == 1
    [makecall] = fake_pbx.makecalls()
    assert makecall.json == {"phone": "74951234567", "user": DUTY}
    assert len(await h.leads_rows()) == 1
    assert 'trubka_callback_requests_total{outcome="duplicate"} 1.0' in await h.metrics_text()


async def test_callback_bombing_dials_at_most_the_budget_per_phone(
    make_harness: HarnessFactory, any_db: Database, fake_pbx: FakePbx
) -> None:
    h = await _harness(make_harness, any_db)
    h.clock.set(MONDAY_10.astimezone(UTC))
    visit_id = await _ad_visit(h)
    # 100 requests for one phone, each from another address in another network.
    answers = await asyncio.gather(
        *(ask_callback(h.client, visit_id, PHONE, address=f"8.{i}.{i % 7}.10") for i in range(100))
    )
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 2
    assert statuses.count(429) == 98
    assert {body["reason"] for status, body in answers if status == 429} == {"phone"}
    assert await _dialled(h, fake_pbx, 2) == 2
    assert len(await h.leads_rows()) == 2
    metrics = await h.metrics_text()
    assert 'trubka_callback_requests_total{outcome="phone"} 98.0' in metrics


async def test_the_budget_per_phone_is_stored_so_another_process_sees_it(
    make_harness: HarnessFactory, any_db: Database, fake_pbx: FakePbx
) -> None:
    first = await _harness(make_harness, any_db)
    first.clock.set(MONDAY_10.astimezone(UTC))
    visit_id = await _ad_visit(first)
    for i in range(2):
        assert (await ask_callback(first.client, visit_id, PHONE, address=f"8.8.{i}.1"))[0] == 200
    second = await _harness(make_harness, any_db)  # a restart, or a second web process
    second.clock.set(MONDAY_10.astimezone(UTC))
    status, body = await ask_callback(second.client, visit_id, PHONE, address="9.9.9.9")
    assert (status, body["reason"]) == (429, "phone")
    # Another phone still may ask.
    assert (await ask_callback(second.client, visit_id, "79161234567"))[0] == 200


async def test_refusals_say_why_are_counted_and_dial_nothing(
    make_harness: HarnessFactory, any_db: Database, fake_pbx: FakePbx
) -> None:
    h = await _harness(make_harness, any_db, "[tracking.widgets.budgets]\nper_site_per_hour = 4\n")
    h.clock.set(MONDAY_10.astimezone(UTC))
    visit_id = await _ad_visit(h)
    refused = [
        (await ask_callback(h.client, visit_id, PHONE, website="http://spam.example"), "honeypot"),
        (await ask_callback(h.client, visit_id, "8 800 555-35-35"), "phone_invalid"),
        (await ask_callback(h.client, visit_id, "+1 212 555 0100"), "phone_invalid"),
        (await ask_callback(h.client, visit_id, "701"), "phone_invalid"),
        (await ask_callback(h.client, "f" * 32, PHONE), "visit_unknown"),
    ]
    for (status, body), reason in refused:
        assert (status, body["reason"]) == (400, reason), body
    status, body = await ask_callback(h.client, None, PHONE)
    assert (status, body["field"]) == (400, "visit_id")

    # The address's bucket: three at once, then 429 with Retry-After.
    answers = [
        await ask_callback(h.client, visit_id, f"7916123456{i}", address="5.5.5.5")
        for i in range(4)
    ]
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert answers[-1][1] == {"error": "Too many requests", "reason": "address"}
    # The site's hourly budget (4 here): the fourth from another address is the last one.
    assert (await ask_callback(h.client, visit_id, "79161234570", address="6.6.6.6"))[0] == 200
    status, body = await ask_callback(h.client, visit_id, "79161234571", address="7.7.7.7")
    assert (status, body["reason"]) == (429, "site")

    # A visit not seen for longer than visit_max_age_minutes is refused.
    async with any_db.session() as session:
        await session.exec(
            update(TrackingVisit).values(last_seen_at=datetime.now(UTC) - timedelta(hours=3))  # type: ignore[call-overload]
        )
    status, body = await ask_callback(h.client, visit_id, "79161234572", address="4.4.4.4")
    assert (status, body["reason"]) == (400, "visit_stale")

    assert await _dialled(h, fake_pbx, 4) == 4  # the four accepted ones only
    async with any_db.session() as session:
        assert len((await session.exec(select(Lead))).all()) == 4
    metrics = await h.metrics_text()
    for reason in ("honeypot", "visit_unknown", "address", "site", "visit_stale"):
        assert f'trubka_callback_requests_total{{outcome="{reason}"}} 1.0' in metrics
    assert 'trubka_callback_requests_total{outcome="phone_invalid"} 3.0' in metrics


async def test_without_widgets_the_route_is_404(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db, "")
    status, body = await ask_callback(h.client, "x", PHONE)
    assert status == 404 and "error" in body
    assert (await h.client.get("/ct/widget.js")).status == 404


async def test_messenger_links_carry_a_signed_visit_token(
    make_harness: HarnessFactory, any_db: Database, fake_telegram: FakeTelegram
) -> None:
    h = await _harness(
        make_harness,
        any_db,
        'whatsapp_number = "+79001234567"\n',
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_url=fake_telegram.url,
    )
    visit_id = await _ad_visit(h)
    response = await h.client.post(
        "/ct/v1/chat", data=json.dumps({"visit_id": visit_id}), headers={"Origin": SITE}
    )
    assert response.status == 200
    links = await response.json()
    assert links["telegram"].startswith("https://t.me/shop_bot?start=v")
    token = links["telegram"].rpartition("=")[2]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    assert visit_of(link_key(TELEGRAM_TOKEN), token) == visit_id
    assert visit_of(link_key("another bot"), token) is None
    assert links["whatsapp"].startswith("https://wa.me/79001234567?text=")
    assert token in links["whatsapp"]
    unknown = await h.client.post(
        "/ct/v1/chat", data=json.dumps({"visit_id": "0" * 32}), headers={"Origin": SITE}
    )
    assert unknown.status == 404


def test_a_forged_or_damaged_token_names_no_visit() -> None:
    key = link_key("123:secret")
    token = visit_token(key, "0123456789abcdef0123456789abcdef")
    assert token is not None and len(token) == 39 and token.startswith("v")
    assert visit_of(key, token) == "0123456789abcdef0123456789abcdef"
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token[:-1], token + "A", "x" + token[1:], "", "v" + "=" * 38):
        assert visit_of(key, bad) is None
    assert visit_token(key, "not-hex") is None and visit_token(key, "ab" * 20) is None


@settings(max_examples=300, deadline=None)
@given(
    visit=st.binary(min_size=16, max_size=16),
    before=st.sampled_from(["", " ", "Здравствуйте! Код обращения: ", "(", "код:"]),
    after=st.sampled_from(["", " ", ".", ", перезвоните", ")", "\nспасибо"]),
)
def test_every_visit_code_is_found_in_the_message_that_carries_it(
    visit: bytes, before: str, after: str
) -> None:
    """One token in 64 ends in "-": a pattern bounded by `\\b` missed it at the end of the text,
    and that visitor's WhatsApp chat was never tied to the visit (seen as a flaky test)."""
    token = visit_token(link_key(TELEGRAM_TOKEN), visit.hex())
    assert token is not None
    assert code_in(before + token + after) == token
    prefilled = unquote(whatsapp_link("+79001234567", token).partition("?text=")[2])
    assert code_in(prefilled) == token
    assert code_in(before + token + "x" + after) is None  # longer than a token: not one


def test_a_code_ending_in_a_dash_is_found_at_the_end_of_the_message() -> None:
    key = link_key(TELEGRAM_TOKEN)
    visit_id = next(
        v for v in (f"{n:032x}" for n in range(10_000)) if str(visit_token(key, v)).endswith("-")
    )
    token = visit_token(key, visit_id)
    assert token is not None and code_in(f"Код обращения: {token}") == token
    assert visit_of(key, token) == visit_id


async def test_start_with_a_visit_token_binds_the_chat_and_delivers_a_chat_lead(
    make_harness: HarnessFactory, any_db: Database, fake_telegram: FakeTelegram
) -> None:
    h = await _harness(
        make_harness,
        any_db,
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_url=fake_telegram.url,
        telegram_group_interval=0,
        telegram_chat_interval=0,
    )
    visit_id = await _ad_visit(h)
    link = await h.client.post(
        "/ct/v1/chat", data=json.dumps({"visit_id": visit_id}), headers={"Origin": SITE}
    )
    token = (await link.json())["telegram"].rpartition("=")[2]
    app = h.client.server.app

    # A new Telegram user opens the link: /start <token>.
    await feed(app, message(CLIENT_USER, f"/start {token}"))
    await feed(app, message(CLIENT_USER, f"/start {token}"))  # twice: still one lead
    assert fake_telegram.texts_in(CLIENT_USER, None)  # greeted as on any /start
    [lead] = await h.leads_rows()
    assert (lead.source, lead.utm_source, lead.utm_campaign) == ("chat", "yandex", "spring")
    assert lead.metrika_client_id == METRIKA_ID and lead.client_id is not None
    variables = await (await h.client.get(f"/api/v1/clients/{lead.client_id}", headers=AUTH)).json()
    assert variables["variables"]["utm_source"] == "yandex"
    assert variables["variables"]["tracking_visit_id"] == visit_id
    await h.drain()
    [sent] = h.roistat.leads()
    assert sent.params["roistat"] == ROISTAT_VISIT
    assert sent.params["fields[source]"] == "yandex"

    period = {"from": "2026-11-21", "to": "2026-11-21"}  # the harness clock's day
    report = await (await h.client.get("/api/v1/reports/calls", params=period, headers=AUTH)).json()
    assert report["ways_in"]["chats"] == 1

    # A forged token (another bot's key) is an ordinary /start: no lead.
    forged = visit_token(link_key("another bot"), visit_id)
    await feed(app, message(CLIENT_USER + 1, f"/start {forged}"))
    assert len(await h.leads_rows()) == 1


@pytest.fixture
async def fake_whatsapp() -> AsyncIterator[FakeWhatsApp]:
    fake = FakeWhatsApp()
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


async def test_the_whatsapp_link_code_binds_the_chat_to_the_visit(
    make_harness: HarnessFactory,
    any_db: Database,
    fake_telegram: FakeTelegram,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    """WhatsApp has no start parameter: the site's link prefills the visit's code, and the
    first message carrying it (signed webhook from the fake Cloud API) makes the `chat` lead."""
    h = await _harness(
        make_harness,
        any_db,
        'whatsapp_number = "+79001234567"\n',
        telegram_token=TELEGRAM_TOKEN,
        telegram_api_url=fake_telegram.url,
        whatsapp_token=fake_whatsapp.token,
        whatsapp_url=fake_whatsapp.url,
        whatsapp_phone_number_id=fake_whatsapp.phone_number_id,
        whatsapp_app_secret=fake_whatsapp.app_secret,
        whatsapp_verify_token="widgets-verify",
    )
    visit_id = await _ad_visit(h)
    link = await h.client.post(
        "/ct/v1/chat", data=json.dumps({"visit_id": visit_id}), headers={"Origin": SITE}
    )
    prefilled = unquote((await link.json())["whatsapp"].partition("?text=")[2])
    webhook = str(h.client.make_url("/whatsapp_webhook"))

    written = await fake_whatsapp.client_writes(webhook, "79161112233", prefilled, "Ольга")
    assert written.status == 200
    again = await fake_whatsapp.client_writes(webhook, "79161112233", prefilled, "Ольга")
    assert again.status == 200  # a second message with the code: still one lead
    [lead] = await h.leads_rows()
    assert (lead.source, lead.utm_source, lead.utm_campaign) == ("chat", "yandex", "spring")
    assert lead.metrika_client_id == METRIKA_ID

    # A code signed with another key binds nothing.
    forged = visit_token(link_key("another bot"), visit_id)
    await fake_whatsapp.client_writes(webhook, "79161112244", f"Код обращения: {forged}", "Иван")
    assert len(await h.leads_rows()) == 1
