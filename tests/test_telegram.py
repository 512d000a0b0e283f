"""Managers in Telegram, against the fake Bot API and the fake PBX over real HTTP."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import build_app
from bot.settings import ConfigurationError
from bot.telegram.wiring import TELEGRAM
from handlers.telegram import texts
from storage.db import Database
from telephony.clients import create_client, set_variables
from tests import conftest
from tests.conftest import AppFactory
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import FakeTelegram, Sent
from tests.megafon_replay import load, replay
from tests.telegram_updates import (
    ADMIN,
    CLIENT_USER,
    GROUP,
    MANAGER,
    STRANGER,
    callback,
    feed,
    flush,
    message,
    telegram_app_settings,
)

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def telegram_settings(fake_telegram: FakeTelegram) -> dict[str, Any]:
    return telegram_app_settings(fake_telegram.url)


@pytest.fixture
async def app_client(
    telegram_settings: dict[str, Any], db: Database, make_client: AppFactory
) -> Client:
    # Fixture order matters: the app (and its send queue) stops before the database closes.
    return await make_client(db, **telegram_settings)


def app_of(client: Client) -> web.Application:
    return client.server.app


async def get(client: Client, path: str, auth: dict[str, str]) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def client_by_phone(client: Client, phone: str, auth: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = await get(client, f"/api/v1/clients?phone={phone}", auth)
    return result


async def add_manager(app: web.Application, user_id: int = MANAGER, pbx: str = "andy") -> None:
    await feed(app, message(ADMIN, f"/addmanager {user_id} Андрей", chat_id=GROUP))
    await feed(app, message(user_id, f"/pbx {pbx}"))


def last_to(fake: FakeTelegram, chat_id: int) -> Sent:
    return fake.in_thread(chat_id, None)[-1]


def thread_of(fake: FakeTelegram, title_part: str) -> int:
    threads = [tid for tid, name in fake.topics.items() if title_part in name]
    assert threads, fake.topics
    return threads[-1]


def with_phone(pushes: list[dict[str, str]], phone: str) -> list[dict[str, str]]:
    return [{**p, "phone": phone} for p in pushes]


async def test_call_button_rings_the_pbx_and_the_call_shows_up_in_the_topic(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    any_db: Database,
    make_client: AppFactory,
    fake_pbx: FakePbx,
    auth: dict[str, str],
) -> None:
    client = await make_client(any_db, **telegram_settings)
    app = app_of(client)
    # An answered inbound call makes the client and their topic (card first, then the events).
    await replay(client, load("inbound_answered"))
    await flush(app)
    thread = thread_of(fake_telegram, "+7 910 123-45-67")
    topic = fake_telegram.texts_in(GROUP, thread)
    assert "Телефон: +7 910 123-45-67" in topic[0]
    card_buttons = fake_telegram.in_thread(GROUP, thread)[0].reply_markup["inline_keyboard"][0]
    assert [b["text"] for b in card_buttons] == ["📞 Позвонить", "🔄 Обновить"]
    assert any("INCOMING" in t and "Ответственный" in t for t in topic)
    assert any("ACCEPTED" in t and "andy" in t for t in topic)
    final = next(t for t in topic if "Success" in t)
    assert "2 мин 4 с" in final and "/79101234567.mp3" in final and "andy" in final

    await add_manager(app)
    person = await client_by_phone(client, "79101234567", auth)
    await feed(app, callback(MANAGER, f"c:call:{person['id']}", thread_id=thread))

    assert [r.json for r in fake_pbx.makecalls()] == [{"phone": "79101234567", "user": "andy"}]
    assert fake_telegram.answers()[-1]["text"] == texts.CALL_STARTED
    # The PBX's pushes about that call arrive and are written into the same topic.
    live = fake_telegram.in_thread(GROUP, thread)[-1]
    assert "REQUESTED" in (live.text or "") and "Андрей" in (live.text or "")
    before = len(fake_telegram.texts_in(GROUP, thread))
    await replay(client, with_phone(load("outbound_requested"), "79101234567"))
    await flush(app)
    # One live message per call, edited as the call goes on; the outcome comes as a new message.
    # Edits still pending together collapse into one to the latest state (the send scheduler
    # coalesces them), so three events make one to three edits depending on timing.
    assert 1 <= live.edits <= 3
    text = live.text or ""
    positions = [text.index(w) for w in ("REQUESTED", "OUTGOING", "ACCEPTED", "COMPLETED")]
    assert positions == sorted(positions)
    new = fake_telegram.texts_in(GROUP, thread)[before:]
    assert len(new) == 1
    status = new[0]
    assert "Андрей" in status and "1 мин 35 с" in status
    assert "https://vats123456.megapbx.ru/api/v2/call-records/record/2024-12-02/out-5521/" in status
    assert len(fake_telegram.called("createForumTopic")) == 1

    # andy (now bound to Telegram) is responsible for this client: a new call mentions him.
    before = len(fake_telegram.texts_in(GROUP, thread))
    await replay(client, with_phone(load("inbound_missed"), "79101234567"))
    await flush(app)
    incoming = next(t for t in fake_telegram.texts_in(GROUP, thread)[before:] if "INCOMING" in t)
    assert f'Ответственный: <a href="tg://user?id={MANAGER}">Андрей (andy)</a>' in incoming


async def test_missed_call_is_an_alert_with_a_call_back_button_and_listed_by_missed(
    app_client: Client, fake_telegram: FakeTelegram, fake_pbx: FakePbx
) -> None:
    app = app_of(app_client)
    await replay(app_client, load("inbound_missed"))
    await flush(app)
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    alert = next(
        s for s in fake_telegram.in_thread(GROUP, thread) if "Пропущенный" in (s.text or "")
    )
    assert "Пропущенный звонок" in (alert.text or "")
    button = alert.reply_markup["inline_keyboard"][0][0]
    assert button["text"] == "📞 Перезвонить"

    await add_manager(app)
    await feed(app, message(MANAGER, "/missed"))
    listed = fake_telegram.in_thread(MANAGER, None)[-1]
    assert "Пропущенные сегодня" in (listed.text or "") and "+7 916 999-88-77" in (
        listed.text or ""
    )
    await feed(
        app, callback(MANAGER, listed.reply_markup["inline_keyboard"][0][0]["callback_data"])
    )
    assert [r.json for r in fake_pbx.makecalls()] == [{"phone": "79169998877", "user": "andy"}]


async def test_a_deleted_topic_is_created_again(
    app_client: Client, fake_telegram: FakeTelegram
) -> None:
    app = app_of(app_client)
    pushes = load("inbound_answered")
    await replay(app_client, pushes[:2])
    await flush(app)
    first = thread_of(fake_telegram, "+7 910 123-45-67")
    fake_telegram.delete_topic(first)

    await replay(app_client, pushes[2:])
    await flush(app)
    second = thread_of(fake_telegram, "+7 910 123-45-67")
    assert second != first
    texts_ = fake_telegram.texts_in(GROUP, second)
    assert texts_[0].startswith("👤")  # a new card on top
    assert any("Success" in t for t in texts_)
    assert any("ACCEPTED" in t and "COMPLETED" in t for t in texts_)  # the live message, anew
    assert len(fake_telegram.called("createForumTopic")) == 2


async def test_a_429_from_telegram_is_waited_out_and_nothing_is_lost(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
) -> None:
    # Budgets in real seconds here: retry_after is honoured as Telegram says it.
    app_client = await make_client(db, **{**telegram_settings, "telegram_time_scale": 1})
    app = app_of(app_client)
    fake_telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await replay(app_client, load("inbound_missed"))
    await flush(app)
    attempts = fake_telegram.called("sendMessage")
    assert attempts[1].at - attempts[0].at >= 1.0  # retry_after honoured
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    topic = fake_telegram.texts_in(GROUP, thread)
    assert topic[0].startswith("👤")
    assert [w for w in ("INCOMING", "CANCELLED", "Missed") if any(w in t for t in topic)] == [
        "INCOMING",
        "CANCELLED",
        "Missed",
    ]


async def test_a_failed_send_is_retried(app_client: Client, fake_telegram: FakeTelegram) -> None:
    app = app_of(app_client)
    await replay(app_client, load("inbound_missed")[:1])
    await flush(app)
    app[TELEGRAM].sender.pacing.retry_base = 0.05  # the first retry after 50 ms
    fake_telegram.fail("sendMessage", 500, "Internal Server Error")
    await replay(app_client, load("inbound_missed")[1:])
    await flush(app)
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    assert any("Missed" in t for t in fake_telegram.texts_in(GROUP, thread))


async def test_a_non_manager_is_refused_politely(
    app_client: Client, fake_telegram: FakeTelegram, fake_pbx: FakePbx, auth: dict[str, str]
) -> None:
    app = app_of(app_client)
    await replay(app_client, load("inbound_missed"))
    await flush(app)
    person = await client_by_phone(app_client, "79169998877", auth)
    sent_before = len(fake_telegram.sent)

    await feed(app, callback(STRANGER, f"c:call:{person['id']}"))
    await feed(app, message(STRANGER, "/call 79169998877", chat_id=GROUP))
    await feed(app, message(STRANGER, "/addmanager 5", chat_id=GROUP))

    assert fake_pbx.makecalls() == []
    answer = fake_telegram.answers()[-1]
    assert answer["text"] == texts.NOT_A_MANAGER and answer["show_alert"] is True
    replies = [s.text for s in fake_telegram.sent[sent_before:]]
    assert replies == [texts.NOT_A_MANAGER, texts.ADMINS_ONLY]


async def test_admins_add_and_remove_managers(
    app_client: Client, fake_telegram: FakeTelegram, fake_pbx: FakePbx
) -> None:
    app = app_of(app_client)
    # By replying to the person's message in the group.
    their_message = message(MANAGER, "привет", chat_id=GROUP, name="Андрей")["message"]
    await feed(app, message(ADMIN, "/addmanager", chat_id=GROUP, reply_to_message=their_message))
    assert last_to(fake_telegram, GROUP).text == "Менеджер добавлен: Андрей"
    await feed(app, message(ADMIN, "/managers"))
    assert f"Андрей — id {MANAGER}" in (last_to(fake_telegram, ADMIN).text or "")

    await feed(app, message(MANAGER, "/call +7 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == texts.CALL_UNBOUND  # added, but no PBX login yet

    await feed(app, message(ADMIN, f"/delmanager {MANAGER}"))
    assert last_to(fake_telegram, ADMIN).text == f"Менеджер {MANAGER} удалён"
    await feed(app, message(MANAGER, "/call +7 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == texts.NOT_A_MANAGER
    assert fake_pbx.makecalls() == []


async def test_a_manager_picks_a_pbx_login_from_the_pbx_and_a_call_mode(
    app_client: Client, fake_telegram: FakeTelegram, fake_pbx: FakePbx
) -> None:
    app = app_of(app_client)
    await feed(app, message(ADMIN, f"/addmanager {MANAGER} Борис"))
    await feed(app, message(MANAGER, "/me"))
    assert "Логин АТС: не привязан" in (last_to(fake_telegram, MANAGER).text or "")

    await feed(app, callback(MANAGER, "m:users:", chat_id=MANAGER))
    offered = last_to(fake_telegram, MANAGER).reply_markup["inline_keyboard"]
    assert [row[0]["text"] for row in offered] == [
        "Андрей Петров (andy, доб. 701)",
        "Борис Иванов (bob, доб. 702)",
    ]
    await feed(app, callback(MANAGER, offered[1][0]["callback_data"], chat_id=MANAGER))
    edited = fake_telegram.called("editMessageText")[-1].params["text"]
    assert "Логин АТС: bob" in edited and "Борис Иванов (bob)" in edited

    await feed(app, message(MANAGER, "/call 8 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == texts.CALL_STARTED
    assert fake_pbx.makecalls()[-1].json == {"phone": "79004443322", "user": "bob"}

    await feed(app, callback(MANAGER, "m:mode:app", chat_id=MANAGER))
    await feed(app, message(MANAGER, "/call 8 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == "Наберите с телефона: +7 900 444-33-22"

    await feed(app, callback(MANAGER, "m:mode:disabled", chat_id=MANAGER))
    await feed(app, message(MANAGER, "/call 8 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == texts.CALL_DISABLED
    assert len(fake_pbx.makecalls()) == 1

    await feed(app, callback(MANAGER, "m:mode:api", chat_id=MANAGER))
    fake_pbx.fail(400, {"message": "User bob is offline"})
    await feed(app, message(MANAGER, "/call 8 900 444-33-22"))
    assert last_to(fake_telegram, MANAGER).text == "АТС отказала: User bob is offline"


async def test_client_private_chat_and_topic_are_copied_both_ways(
    app_client: Client, fake_telegram: FakeTelegram, auth: dict[str, str]
) -> None:
    app = app_of(app_client)
    await add_manager(app)
    await feed(app, message(CLIENT_USER, "/start", name="Ольга"))
    hello = fake_telegram.in_thread(CLIENT_USER, None)[-1]
    assert hello.text == texts.CLIENT_HELLO
    assert hello.reply_markup["keyboard"][0][0]["request_contact"] is True

    question = message(CLIENT_USER, "Сколько стоит доставка?", name="Ольга")
    await feed(app, question)
    thread = thread_of(fake_telegram, "Ольга")
    copied = fake_telegram.in_thread(GROUP, thread)[-1]
    assert (copied.method, copied.from_chat_id, copied.from_message_id) == (
        "copyMessage",
        CLIENT_USER,
        question["message"]["message_id"],
    )

    reply = message(MANAGER, "500 рублей", chat_id=GROUP, thread_id=thread)
    await feed(app, reply)
    back = fake_telegram.in_thread(CLIENT_USER, None)[-1]
    assert (back.method, back.from_chat_id, back.from_message_id) == (
        "copyMessage",
        GROUP,
        reply["message"]["message_id"],
    )
    clients = await get(app_client, f"/api/v1/clients/{1}/dialog", auth)
    assert [(m["direction"], m["text"]) for m in clients["messages"]] == [
        ("in", "Сколько стоит доставка?"),
        ("out", "500 рублей"),
    ]


async def test_shared_phone_merges_with_the_telephony_client_keeping_both_histories(
    app_client: Client, fake_telegram: FakeTelegram, auth: dict[str, str]
) -> None:
    app = app_of(app_client)
    await replay(app_client, load("inbound_answered"))
    await feed(app, message(CLIENT_USER, "Добрый день", name="Ольга"))
    before = await client_by_phone(app_client, "79101234567", auth)
    assert before["channel"] == "telephony"

    contact = {"phone_number": "+7 910 123-45-67", "first_name": "Ольга", "user_id": CLIENT_USER}
    await feed(app, message(CLIENT_USER, None, name="Ольга", contact=contact))
    assert fake_telegram.in_thread(CLIENT_USER, None)[-1].text == texts.PHONE_THANKS

    # The phone's topic now carries the person's name; their own topic points there, closed.
    phone_thread = thread_of(fake_telegram, "+7 910 123-45-67")
    assert fake_telegram.topics[phone_thread] == "Ольга · +7 910 123-45-67"
    own_thread = next(t for t, name in fake_telegram.topics.items() if name == "Ольга")
    assert fake_telegram.texts_in(GROUP, own_thread)[-1] == texts.merged_away(
        f"https://t.me/c/1234567890/{phone_thread}"
    )
    assert fake_telegram.called("closeForumTopic")[-1].params["message_thread_id"] == own_thread
    after = await client_by_phone(app_client, "79101234567", auth)
    assert after["id"] == before["id"]
    assert after["channel"] == "telegram"
    assert after["variables"]["megafon_call_user"] == "andy"
    dialog = await get(app_client, f"/api/v1/clients/{after['id']}/dialog", auth)
    lines = [m["text"] for m in dialog["messages"]]
    assert "megafon_call_status Success" in lines and "Добрый день" in lines
    # The person's next message lands in the telephony client's topic.
    await feed(app, message(CLIENT_USER, "Перезвоните мне", name="Ольга"))
    assert fake_telegram.in_thread(GROUP, phone_thread)[-1].method == "copyMessage"


async def test_foreign_contact_is_not_taken(
    app_client: Client, fake_telegram: FakeTelegram
) -> None:
    app = app_of(app_client)
    contact = {"phone_number": "+79001112233", "first_name": "Кто-то", "user_id": 12345}
    await feed(app, message(CLIENT_USER, None, contact=contact))
    assert fake_telegram.in_thread(CLIENT_USER, None)[-1].text == texts.OWN_CONTACT_ONLY


async def test_client_and_calls_commands(
    app_client: Client, fake_telegram: FakeTelegram, db: Database
) -> None:
    app = app_of(app_client)
    await add_manager(app)
    async with db.session() as session:  # a client a site form brought in, with its UTM
        person = await create_client(session, phone="79101234567")
        await set_variables(session, person, {"utm_source": "yandex", "utm_campaign": "spring"})
    await replay(app_client, load("inbound_answered"))
    await flush(app)
    thread = thread_of(fake_telegram, "+7 910 123-45-67")
    card = fake_telegram.texts_in(GROUP, thread)[0]
    assert "Источник: utm_source=yandex, utm_campaign=spring" in card

    await feed(app, message(MANAGER, "/client 8 (910) 123-45-67"))
    assert (
        last_to(fake_telegram, MANAGER).text
        == f"+7 910 123-45-67: https://t.me/c/1234567890/{thread}"
    )
    await feed(app, message(MANAGER, "/client 8 999 000-00-00"))
    assert last_to(fake_telegram, MANAGER).text == texts.CLIENT_NOT_FOUND

    await feed(app, message(MANAGER, "/calls"))
    listing = last_to(fake_telegram, MANAGER).text or ""
    assert "+7 910 123-45-67 Success, andy, 2 мин 4 с" in listing

    await feed(app, callback(MANAGER, "c:refresh:1", thread_id=thread))
    card = fake_telegram.called("editMessageText")[-1].params["text"]
    assert "Ответственный: " in card and "Success" in card
    assert fake_telegram.answers()[-1]["text"] == texts.REFRESHED


async def test_webhook_mode_checks_the_secret(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
) -> None:
    client = await make_client(
        db,
        **telegram_settings,
        telegram_webhook_url="https://bot.example.com/tg/hook",
        telegram_webhook_secret="s3cret",
    )
    assert fake_telegram.called("setWebhook")[0].params["url"] == "https://bot.example.com/tg/hook"
    assert fake_telegram.called("setWebhook")[0].params["secret_token"] == "s3cret"
    update = message(STRANGER, "/call 79001112233")
    wrong = await client.post(
        "/tg/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "x"}
    )
    assert wrong.status == 401
    right = await client.post(
        "/tg/hook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    )
    assert right.status == 200
    await fake_telegram.wait_for(
        lambda: any(s.text == texts.NOT_A_MANAGER for s in fake_telegram.sent)
    )
    assert fake_telegram.called("getUpdates") == []


async def test_long_polling_by_default(app_client: Client, fake_telegram: FakeTelegram) -> None:
    await fake_telegram.updates.put(message(STRANGER, "/call 79001112233"))
    await fake_telegram.wait_for(
        lambda: any(s.text == texts.NOT_A_MANAGER for s in fake_telegram.sent)
    )
    assert TELEGRAM in app_of(app_client)


async def test_without_a_token_nothing_telegram_starts(
    make_client: AppFactory, db: Database, fake_telegram: FakeTelegram
) -> None:
    client = await make_client(db)
    assert TELEGRAM not in app_of(client)
    assert (await client.get("/healthz")).status == 200
    assert fake_telegram.calls == []


async def test_webhook_mode_needs_a_secret(telegram_settings: dict[str, Any], db: Database) -> None:
    settings = conftest.test_settings(
        **telegram_settings, telegram_webhook_url="https://bot.example.com/h"
    )
    with pytest.raises(ConfigurationError, match="TRUBKA_TELEGRAM_WEBHOOK_SECRET"):
        await build_app(settings, db=db, migrate=False)


async def test_sends_to_the_group_are_paced(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
) -> None:
    client = await make_client(db, **{**telegram_settings, "telegram_group_interval": 0.2})
    await replay(client, load("inbound_missed"))
    await flush(app_of(client))
    sends = ("createForumTopic", "sendMessage", "editMessageText")
    moments = [c.at for c in fake_telegram.calls if c.method in sends]
    assert len(moments) == 5  # topic, card, the live message: INCOMING, edited: CANCELLED, Missed
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(moments))


async def test_call_notes_stored_while_the_bot_was_down_are_sent_at_start(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
) -> None:
    pushes = load("inbound_missed")
    first = await make_client(db, **telegram_settings)
    await replay(first, pushes[:1])
    await flush(app_of(first))
    await first.close()
    # The PBX keeps pushing while the bot is down (here: an instance without Telegram).
    await replay(await make_client(db), pushes[1:])

    restarted = await make_client(db, **telegram_settings)
    await flush(app_of(restarted))
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    topic = fake_telegram.texts_in(GROUP, thread)
    assert [w for w in ("INCOMING", "CANCELLED", "Missed") if any(w in t for t in topic)] == [
        "INCOMING",
        "CANCELLED",
        "Missed",
    ]
    assert sum("INCOMING" in t for t in topic[1:]) == 1  # nothing sent twice (0 is the card)


async def test_polling_starts_once_telegram_answers(
    telegram_settings: dict[str, Any],
    fake_telegram: FakeTelegram,
    db: Database,
    make_client: AppFactory,
) -> None:
    fake_telegram.fail("getMe", 502, "Bad Gateway")  # Telegram down while we start
    await make_client(db, **telegram_settings)
    await fake_telegram.updates.put(message(STRANGER, "/calls"))
    await fake_telegram.wait_for(
        lambda: any(s.text == texts.NOT_A_MANAGER for s in fake_telegram.sent)
    )
    assert len(fake_telegram.called("getMe")) == 2


async def test_a_client_who_blocked_the_bot_is_reported_in_the_topic(
    app_client: Client, fake_telegram: FakeTelegram
) -> None:
    app = app_of(app_client)
    await add_manager(app)
    await feed(app, message(CLIENT_USER, "Жду ответа", name="Ольга"))
    thread = thread_of(fake_telegram, "Ольга")
    fake_telegram.fail("copyMessage", 403, "Forbidden: bot was blocked by the user")
    await feed(app, message(MANAGER, "Ответ", chat_id=GROUP, thread_id=thread))
    assert fake_telegram.texts_in(GROUP, thread)[-1] == (
        "⚠️ Сообщение не доставлено клиенту: Forbidden: bot was blocked by the user"
    )


async def test_the_call_button_explains_why_it_cannot_call(
    app_client: Client, fake_telegram: FakeTelegram, fake_pbx: FakePbx, auth: dict[str, str]
) -> None:
    app = app_of(app_client)
    await replay(app_client, load("inbound_missed"))
    await flush(app)
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    person = await client_by_phone(app_client, "79169998877", auth)
    tap = f"c:call:{person['id']}"

    await feed(app, message(ADMIN, f"/addmanager {MANAGER} Андрей"))
    await feed(app, callback(MANAGER, tap, thread_id=thread))
    assert fake_telegram.answers()[-1] == {
        "callback_query_id": fake_telegram.answers()[-1]["callback_query_id"],
        "text": texts.CALL_UNBOUND,
        "show_alert": True,
    }

    await feed(app, message(MANAGER, "/pbx andy"))
    await feed(app, callback(MANAGER, "m:mode:disabled", chat_id=MANAGER))
    await feed(app, callback(MANAGER, tap, thread_id=thread))
    assert fake_telegram.answers()[-1]["text"] == texts.CALL_DISABLED

    await feed(app, callback(MANAGER, "m:mode:app", chat_id=MANAGER))
    await feed(app, callback(MANAGER, tap, thread_id=thread))
    assert fake_telegram.answers()[-1]["text"] == "Наберите с телефона: +7 916 999-88-77"
    # The number as text in the topic: the phone's Telegram app makes it a dialable link.
    assert fake_telegram.texts_in(GROUP, thread)[-1] == "Наберите с телефона: +7 916 999-88-77"

    await feed(app, callback(MANAGER, "m:mode:api", chat_id=MANAGER))
    fake_pbx.fail(503, {"message": "Сервис временно недоступен"})
    await feed(app, callback(MANAGER, tap, thread_id=thread))
    assert fake_telegram.answers()[-1]["text"] == "АТС отказала: Сервис временно недоступен"
    assert len(fake_pbx.makecalls()) == 1  # only the last tap reached the PBX


async def test_a_group_without_topic_rights_gets_the_notes_once_fixed(
    app_client: Client, fake_telegram: FakeTelegram
) -> None:
    app = app_of(app_client)
    app[TELEGRAM].sender.pacing.retry_base = 0.05
    fake_telegram.fail("createForumTopic", 400, "Bad Request: not enough rights to create a topic")
    await replay(app_client, load("inbound_missed"))
    await flush(app)
    assert len(fake_telegram.called("createForumTopic")) == 2  # refused, then (rights given) ok
    thread = thread_of(fake_telegram, "+7 916 999-88-77")
    assert any("Missed" in t for t in fake_telegram.texts_in(GROUP, thread))


def test_a_call_in_progress_is_listed_in_words_not_pbx_codes() -> None:
    from zoneinfo import ZoneInfo

    from handlers.telegram.texts import call_line
    from storage.models import Call

    zone = ZoneInfo("Europe/Moscow")
    ringing = Call(provider="megafon", callid="A", phone="79101234567", direction="in",
                   last_event="INCOMING", manager_user="andy")
    assert "звонит" in call_line(ringing, zone) and "INCOMING" not in call_line(ringing, zone)
    ringing.answered, ringing.last_event = True, "ACCEPTED"
    assert "идёт разговор" in call_line(ringing, zone)
    ringing.ended, ringing.last_event = True, "COMPLETED"
    assert "завершён" in call_line(ringing, zone)
    ringing.status = "Success"
    assert "Success, andy" in call_line(ringing, zone)
