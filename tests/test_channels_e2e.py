"""Issue 20 end to end, over HTTP, on both databases: a missed call from a never-seen phone (a
MegaFon push replay) → the shipped scenario writes to the caller (the WhatsApp template when
WhatsApp is connected, else an SMS with the Telegram link) → the client's WhatsApp reply appears
in the managers' topic → the manager's answer reaches them in WhatsApp → the client taps the
deep link from the SMS and goes on in Telegram as the same client.

The real SmsRuChannel / WhatsAppChannel talk to the fakes in tests/fakes over HTTP; the PBX and
the Bot API are fakes too; the clock is fake (the sends happen with no time passing)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from bot.channels import CHANNEL_SENDER
from handlers.telegram import texts
from storage.db import Database
from storage.telegram_models import TelegramTopic
from tests.conftest import AppClient
from tests.fakes.megafon import FakePbx
from tests.fakes.smsru import FakeSmsRu
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.megafon_replay import load
from tests.scenario_support import EXAMPLES, Harness, start_app
from tests.telegram_updates import ADMIN, GROUP, message

MISSED = "79169998877"  # the caller of tests/fixtures/megafon/inbound_missed.yaml
TAPPER = 801  # the Telegram user who taps the link from the SMS
LINK = re.compile(r"https://t\.me/trubka_bot\?start=([A-Za-z0-9_-]+)")


@pytest.fixture
async def fake_smsru() -> AsyncIterator[FakeSmsRu]:
    fake = FakeSmsRu()
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


async def settle(h: Harness) -> None:
    """Pushes applied, scenario jobs run, SMS / WhatsApp and Telegram sends out."""
    for _ in range(4):
        await h.settle()
        sent = await h.app[CHANNEL_SENDER].run_once()
        await h.settle()
        if not sent:
            return


async def topic_thread(db: Database, client_id: int) -> int:
    async with db.session() as session:
        topic = (
            await session.exec(select(TelegramTopic).where(TelegramTopic.client_id == client_id))
        ).first()
    assert topic is not None
    return topic.message_thread_id


async def start(
    db: Database,
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
    **settings: Any,
) -> Harness:
    return await start_app(
        db,
        tmp_path,
        app_clients,
        fake_pbx,
        fake_telegram,
        EXAMPLES,
        telegram_bot_username="trubka_bot",
        link_secret="e2e-link-secret",
        **settings,
    )


async def test_a_missed_caller_gets_an_sms_and_moves_to_telegram_as_the_same_client(
    any_db: Database,
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
    fake_smsru: FakeSmsRu,
) -> None:
    db = any_db
    h = await start(
        db, tmp_path, app_clients, fake_pbx, fake_telegram,
        smsru_api_id=fake_smsru.api_id, smsru_url=fake_smsru.url,
    )  # fmt: skip
    started = h.clock.now()
    await h.replay(load("inbound_missed"))
    await settle(h)

    # The shipped scenario's SMS, at once (no fake time passed), with the Telegram link.
    [sms] = fake_smsru.sent
    assert h.clock.now() == started
    assert sms.phone == MISSED
    assert sms.text.startswith("Мы пропустили ваш звонок… Перезвоним в течение 15 минут")
    match = LINK.search(sms.text)
    assert match is not None, sms.text
    person = await h.person(MISSED)
    assert person["channel"] == "sms"  # a never-seen caller is an SMS client at once
    dialog = await h.dialog(person["id"])
    assert sms.text in dialog
    assert any("→ клиенту (SMS)" in text for text in h.in_group())

    # SMS.ru reports it delivered: a dialog line (and the `delivery_status` trigger).
    answer = await fake_smsru.report_status(
        str(h.client.make_url("/smsru_callback")), sms.sms_id, 103
    )
    assert answer == (200, "100")
    assert "sms_status delivered" in await h.dialog(person["id"])

    # The client taps the link: Telegram binds to the same client, the topic says so.
    await h.feed(message(TAPPER, f"/start {match.group(1)}", name="Ольга"))
    await settle(h)
    assert fake_telegram.texts_in(TAPPER, None)[-1] == texts.LINKED
    same = await h.person(MISSED)
    assert same["id"] == person["id"]
    assert same["channel"] == "telegram"
    thread = await topic_thread(db, person["id"])
    assert texts.LINKED_NOTE in fake_telegram.texts_in(GROUP, thread)

    # They go on in Telegram; the manager's answer goes to Telegram, not by SMS.
    await h.feed(message(TAPPER, "Удобно после 15:00", name="Ольга"))
    await h.feed(message(ADMIN, "Договорились, позвоним в 15:00", chat_id=GROUP, thread_id=thread))
    await settle(h)
    copies = [c for c in fake_telegram.calls if c.method == "copyMessage"]
    assert any(str(c.params.get("chat_id")) == str(TAPPER) for c in copies)
    assert len(fake_smsru.sent) == 1
    assert "Договорились, позвоним в 15:00" in await h.dialog(person["id"])


@pytest.fixture
async def fake_whatsapp() -> AsyncIterator[FakeWhatsApp]:
    fake = FakeWhatsApp()
    fake.register_template("missed_call", params=1)
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


async def test_a_missed_caller_gets_the_whatsapp_template_and_the_dialog_goes_on_in_whatsapp(
    any_db: Database,
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
    fake_smsru: FakeSmsRu,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    db = any_db
    h = await start(
        db, tmp_path, app_clients, fake_pbx, fake_telegram,
        smsru_api_id=fake_smsru.api_id, smsru_url=fake_smsru.url,
        whatsapp_token=fake_whatsapp.token, whatsapp_url=fake_whatsapp.url,
        whatsapp_phone_number_id=fake_whatsapp.phone_number_id,
        whatsapp_app_secret=fake_whatsapp.app_secret, whatsapp_verify_token="e2e-verify",
    )  # fmt: skip
    started = h.clock.now()
    await h.replay(load("inbound_missed"))
    await settle(h)

    # WhatsApp is connected: the approved template, not an SMS, and no fake time passed.
    [template] = fake_whatsapp.to(MISSED)
    assert h.clock.now() == started
    assert (template.type, template.template, template.params) == (
        "template",
        "missed_call",
        ["Перезвоним в течение 15 минут в рабочее время."],
    )
    assert fake_smsru.sent == []
    person = await h.person(MISSED)
    assert person["channel"] == "whatsapp"
    assert "[шаблон WhatsApp missed_call: Перезвоним в течение 15 минут в рабочее время.]" in (
        await h.dialog(person["id"])
    )
    webhook = str(h.client.make_url("/whatsapp_webhook"))
    read = await fake_whatsapp.report_status(webhook, template.wamid, "read")
    assert read.status == 200
    assert "whatsapp_status read" in await h.dialog(person["id"])

    # The client answers in WhatsApp: the reply appears in the managers' topic.
    written = await fake_whatsapp.client_writes(webhook, MISSED, "Перезвоните после обеда", "Ольга")
    assert written.status == 200
    again = await fake_whatsapp.post_webhook(webhook, written.body)  # Meta retries a delivery
    assert again.status == 200
    await settle(h)
    thread = await topic_thread(db, person["id"])
    in_topic = fake_telegram.texts_in(GROUP, thread)
    assert in_topic.count("💬 WhatsApp: Перезвоните после обеда") == 1  # once, not twice
    assert (await h.person(MISSED))["name"] == "Ольга"

    # The manager answers in the topic: it reaches the client in WhatsApp (the window is open).
    await h.feed(message(ADMIN, "Конечно, наберём в 14:00", chat_id=GROUP, thread_id=thread))
    await settle(h)
    texts_to_client = [m.text for m in fake_whatsapp.to(MISSED) if m.type == "text"]
    assert texts_to_client == ["Конечно, наберём в 14:00"]
    assert fake_smsru.sent == []
    dialog = await h.dialog(person["id"])
    assert dialog.count("Перезвоните после обеда") == 1
    assert "Конечно, наберём в 14:00" in dialog


FAILED_RULES = """
rules:
  - name: write on a missed call
    on: {call_status: [Missed]}
    do:
      - send_template: {name: missed_call, params: ["Перезвоним"], via: whatsapp}
  - name: not delivered
    on: {delivery_status: [failed]}
    do:
      - notify_managers: "Не доставлено ({{ delivery.channel }}, {{ delivery.code }})"
"""


async def test_a_failed_delivery_is_in_the_dialog_and_fires_the_delivery_status_trigger(
    any_db: Database,
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    h = await start_app(
        any_db, tmp_path, app_clients, fake_pbx, fake_telegram, FAILED_RULES,
        whatsapp_token=fake_whatsapp.token, whatsapp_url=fake_whatsapp.url,
        whatsapp_phone_number_id=fake_whatsapp.phone_number_id,
        whatsapp_app_secret=fake_whatsapp.app_secret, whatsapp_verify_token="e2e-verify",
    )  # fmt: skip
    await h.replay(load("inbound_missed"))
    await settle(h)
    [template] = fake_whatsapp.to(MISSED)
    webhook = str(h.client.make_url("/whatsapp_webhook"))
    failed = await fake_whatsapp.report_status(webhook, template.wamid, "failed", error_code=131026)
    assert failed.status == 200
    await fake_whatsapp.report_status(webhook, template.wamid, "failed", error_code=131026)
    await fake_whatsapp.report_status(webhook, "wamid.unknown", "read")  # not ours: ignored
    await settle(h)
    person = await h.person(MISSED)
    dialog = await h.dialog(person["id"])
    assert dialog.count("whatsapp_status failed") == 1  # a repeated status changes nothing
    assert "whatsapp_status read" not in dialog
    assert dialog.count("Не доставлено (whatsapp, 131026)") == 1
    thread = await topic_thread(any_db, person["id"])
    assert "Не доставлено (whatsapp, 131026)" in fake_telegram.texts_in(GROUP, thread)
