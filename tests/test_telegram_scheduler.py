"""The send scheduler against the fake Bot API, which enforces Telegram's limits (windows 100
times shorter, the app's budgets scaled the same): budgets, priority lanes, coalesced live
edits, private alerts, escalations with «Беру», and how a refused token is reported.

The app and the fake Bot API share a clock that skips waits (conftest `skipping_clock`): the
scheduler's waits for budgets, 429s and backoffs take no real time, and the tests move it past
an escalation's delay instead of sleeping."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.telegram.wiring import TELEGRAM
from handlers.telegram import texts
from storage.db import Database
from storage.telegram_models import TelegramDelivery
from telephony.infra.clock import SkippingClock
from tests import conftest
from tests.conftest import AppFactory
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.megafon_replay import load, replay
from tests.telegram_updates import (
    ADMIN,
    CLIENT_USER,
    GROUP,
    MANAGER,
    callback,
    feed,
    flush,
    message,
)

Client = TestClient[web.Request, web.Application]
OTHER = 501  # a second manager


@pytest.fixture
def settings(fake_telegram: FakeTelegram) -> dict[str, Any]:
    return {
        "telegram_token": TOKEN,
        "telegram_api_url": fake_telegram.url,
        "telegram_managers_chat_id": GROUP,
        "telegram_admin_ids": str(ADMIN),
        "telegram_time_scale": conftest.TELEGRAM_SCALE,
    }


def app_of(client: Client) -> web.Application:
    return client.server.app


def thread_of(fake: FakeTelegram, title_part: str) -> int:
    threads = [tid for tid, name in fake.topics.items() if title_part in name]
    assert threads, fake.topics
    return threads[-1]


def private_texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return fake.texts_in(chat_id, None)


async def manager(app: web.Application, user_id: int, pbx: str, name: str = "Андрей") -> None:
    await feed(app, message(ADMIN, f"/addmanager {user_id} {name}", chat_id=GROUP))
    await feed(app, message(user_id, f"/pbx {pbx}"))


async def test_a_known_client_ringing_alerts_the_responsible_manager_privately_at_once(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(db, telegram_clock=skipping_clock, **settings)
    app = app_of(client)
    await manager(app, MANAGER, "andy")
    await replay(client, load("inbound_answered"))  # a new client: andy becomes responsible
    await flush(app)
    assert not any("Звонит клиент" in t for t in private_texts(fake_telegram, MANAGER))

    again = [{**p, "phone": "79101234567"} for p in load("inbound_missed")]
    await replay(client, again[:1])  # INCOMING: ringing now
    await flush(app)
    alert = fake_telegram.in_thread(MANAGER, None)[-1]
    assert "Звонит клиент" in (alert.text or "") and "+7 910 123-45-67" in (alert.text or "")
    assert alert.reply_markup["inline_keyboard"][0][0]["text"] == "📞 Позвонить"
    # The topic stays the full log: the ringing call is there too, and it notifies.
    thread = thread_of(fake_telegram, "+7 910 123-45-67")
    ringing = fake_telegram.in_thread(GROUP, thread)[-1]
    assert "INCOMING" in (ringing.text or "")
    sent = [c for c in fake_telegram.called("sendMessage") if c.params.get("chat_id") == GROUP]
    assert sent[-1].params.get("disable_notification") in (None, False)
    assert fake_telegram.refused == []


async def test_an_unknown_caller_alerts_the_on_duty_managers_only(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(db, telegram_clock=skipping_clock, **settings)
    app = app_of(client)
    await manager(app, MANAGER, "andy")
    await manager(app, OTHER, "bob", "Борис")
    await feed(app, message(OTHER, "/duty"))
    assert "Дежурный: да" in (fake_telegram.in_thread(OTHER, None)[-1].text or "")

    await replay(client, load("inbound_missed")[:1])
    await flush(app)
    assert any("+7 916 999-88-77" in t for t in private_texts(fake_telegram, OTHER))
    assert not any("+7 916 999-88-77" in t for t in private_texts(fake_telegram, MANAGER))


async def test_a_missed_call_nobody_takes_is_escalated_and_who_takes_it_shows_in_the_topic(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    # Escalate after 0.3 s (a setting in minutes).
    client = await make_client(
        db, telegram_clock=skipping_clock, **settings, telegram_escalate_after=0.005
    )
    app = app_of(client)
    await manager(app, MANAGER, "andy")
    await manager(app, OTHER, "bob", "Борис")
    await feed(app, message(MANAGER, "/duty"))
    await feed(app, message(OTHER, "/duty"))
    await replay(client, load("inbound_missed"))
    await flush(app)
    skipping_clock.advance(0.3)  # nobody took it meanwhile
    await flush(app)

    def escalated(chat: int) -> bool:
        return any("ждёт" in t for t in private_texts(fake_telegram, chat))

    await fake_telegram.wait_for(lambda: escalated(MANAGER) and escalated(OTHER))
    alert = next(s for s in fake_telegram.in_thread(OTHER, None) if "ждёт" in (s.text or ""))
    take = alert.reply_markup["inline_keyboard"][0][0]
    assert take["text"] == "✋ Беру"
    await feed(app, callback(OTHER, take["callback_data"], chat_id=OTHER))
    assert fake_telegram.answers()[-1]["text"] == texts.TAKEN
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    assert fake_telegram.texts_in(GROUP, thread)[-1] == "✋ Пропущенный звонок взял(а): Борис (bob)"

    await feed(app, callback(MANAGER, take["callback_data"], chat_id=MANAGER))
    assert fake_telegram.answers()[-1]["text"] == "Звонок уже взял(а): Борис (bob)"
    assert fake_telegram.texts_in(GROUP, thread)[-1].startswith("✋")  # said once


async def test_an_escalation_is_dropped_when_the_client_was_called_back(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(
        db, telegram_clock=skipping_clock, **settings, telegram_escalate_after=0.02
    )  # 1.2 s
    app = app_of(client)
    await manager(app, MANAGER, "andy")
    await feed(app, message(MANAGER, "/duty"))
    await replay(client, load("inbound_missed"))
    await flush(app)
    await feed(app, message(MANAGER, "/call +7 916 999-88-77"))  # called back at once
    assert fake_telegram.in_thread(MANAGER, None)[-1].text == texts.CALL_STARTED

    async def settled() -> list[str]:
        async with db.session() as session:
            rows = (
                await session.exec(
                    select(TelegramDelivery).where(TelegramDelivery.method == "escalate")
                )
            ).all()
        return [row.status for row in rows]

    skipping_clock.advance(1.3)  # the escalation is due now
    await flush(app)
    assert await settled() == ["dropped"]
    assert not any("ждёт" in t for t in private_texts(fake_telegram, MANAGER))


async def test_a_backlog_in_the_group_never_exceeds_the_budget_and_a_ringing_call_goes_first(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(db, telegram_clock=skipping_clock, **settings)
    app = app_of(client)
    sender = app[TELEGRAM].sender
    await replay(client, load("inbound_answered"))
    await flush(app)
    # Cards to redraw: the last lane, two sends each (title and card), 40 sends in all.
    for _ in range(20):
        await sender.refresh(1)
    ringing = [{**p, "phone": "79005550011"} for p in load("inbound_missed")[:1]]
    await replay(client, ringing)
    await flush(app)

    methods = [c.method for c in fake_telegram.calls if c.params.get("chat_id") == GROUP]
    incoming = next(
        i
        for i, c in enumerate(fake_telegram.calls)
        if c.method == "sendMessage"
        and "INCOMING" in str(c.params.get("text"))
        and "+7 900 555-00-11" in str(c.params.get("text"))
    )
    last_redraw = max(i for i, c in enumerate(fake_telegram.calls) if c.method == "editForumTopic")
    assert incoming < last_redraw  # went ahead of the backlog
    assert methods.count("editForumTopic") == 20
    assert fake_telegram.refused == []  # the budgets kept every send within Telegram's limits


async def test_pending_edits_of_a_live_message_collapse_into_one(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(db, telegram_clock=skipping_clock, **settings)
    app = app_of(client)
    pushes = load("inbound_answered")
    await replay(client, pushes[:2])
    await flush(app)
    thread = thread_of(fake_telegram, "+7 910 123-45-67")
    live = fake_telegram.in_thread(GROUP, thread)[-1]
    assert "INCOMING" in (live.text or "")
    # Telegram said 429 for the group: the whole chat cools off while the call goes on.
    app[TELEGRAM].sender.budgets.cool_off(GROUP, 150)  # 1.5 s here: longer than the pushes take
    await replay(client, pushes[2:])
    await flush(app)
    assert live.edits == 1
    text = live.text or ""
    assert text.index("ACCEPTED") < text.index("COMPLETED")
    assert any("Success" in t for t in fake_telegram.texts_in(GROUP, thread))


async def test_the_fake_bot_api_enforces_the_group_limit(fake_telegram: FakeTelegram) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramRetryAfter

    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.url)))
    try:
        for n in range(20):
            await bot.send_message(GROUP, f"{n}")
        with pytest.raises(TelegramRetryAfter) as refused:
            await bot.edit_message_text("edited", chat_id=GROUP, message_id=1000)
        assert refused.value.retry_after >= 1
        await bot.send_message(MANAGER, "a private chat has its own budget")
    finally:
        await bot.session.close()


async def test_a_refused_token_is_an_error_once_a_metric_and_a_health_detail(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    caplog: pytest.LogCaptureFixture,
    skipping_clock: SkippingClock,
) -> None:
    caplog.set_level(logging.INFO, "trubka.telegram")
    client = await make_client(
        db, telegram_clock=skipping_clock, **{**settings, "telegram_token": "42:WRONG"}
    )
    app = app_of(client)
    app[TELEGRAM].sender.pacing.retry_base = 0.01
    await replay(client, load("inbound_missed"))
    await app[TELEGRAM].sender.drain()
    skipping_clock.advance(0.05)
    await app[TELEGRAM].sender.drain()  # retried: still refused

    health = await client.get("/healthz")
    assert health.status == 503
    assert "refuses the bot token" in (await health.json())["problems"]["telegram"]
    metrics = await (await client.get("/metrics")).text()
    assert "trubka_telegram_token_refused 1.0" in metrics
    errors = [r for r in caplog.records if "refuses the bot token" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "trubka_telegram_queue_depth" in metrics


async def test_failed_deliveries_are_counted_in_metrics(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    client = await make_client(db, telegram_clock=skipping_clock, **settings)
    app = app_of(client)
    await manager(app, MANAGER, "andy")
    await feed(app, message(CLIENT_USER, "Жду ответа", name="Ольга"))
    thread = thread_of(fake_telegram, "Ольга")
    fake_telegram.fail("copyMessage", 403, "Forbidden: bot was blocked by the user")
    await feed(app, message(MANAGER, "Ответ", chat_id=GROUP, thread_id=thread))
    metrics = await (await client.get("/metrics")).text()
    assert 'trubka_telegram_deliveries_total{outcome="failed"} 1.0' in metrics
    assert 'trubka_telegram_deliveries_total{outcome="sent"}' in metrics


async def test_sends_waiting_when_the_process_stops_go_out_after_a_restart(
    settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
    skipping_clock: SkippingClock,
) -> None:
    first = await make_client(db, telegram_clock=skipping_clock, **settings)
    fake_telegram.fail("sendMessage", 502, "Bad Gateway")  # the card: everything waits
    await replay(first, load("inbound_missed"))
    await app_of(first)[TELEGRAM].sender.drain()  # tried once, backing off
    await first.close()
    assert not any(
        c.method == "sendMessage" and "INCOMING" in str(c.params) for c in fake_telegram.calls
    )

    restarted = await make_client(db, telegram_clock=skipping_clock, **settings)
    await flush(app_of(restarted))
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    topic = fake_telegram.texts_in(GROUP, thread)
    assert topic[0].startswith("👤")
    assert [w for w in ("INCOMING", "CANCELLED", "Missed") if any(w in t for t in topic)] == [
        "INCOMING",
        "CANCELLED",
        "Missed",
    ]
