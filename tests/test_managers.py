"""Managers through every provider: `/pbx megafon andy`, `/pbx novofon 100`, ambiguous input
asks; `/api/v1/managers` by the same rules. Both PBXs configured, over real HTTP fakes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.telegram import texts
from storage.db import Database
from tests import conftest
from tests.conftest import AppFactory
from tests.fakes.megafon import FakePbx
from tests.fakes.novofon import KEY, SECRET, FakeNovofon
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.telegram_updates import ADMIN, GROUP, MANAGER, callback, feed, message

Client = TestClient[web.Request, web.Application]
API = "/api/v1/managers"


@pytest.fixture
async def app(
    fake_telegram: FakeTelegram,
    fake_novofon: FakeNovofon,
    any_db: Database,
    make_client: AppFactory,
) -> Client:
    return await make_client(
        any_db,
        telegram_token=TOKEN,
        telegram_api_url=fake_telegram.url,
        telegram_managers_chat_id=GROUP,
        telegram_admin_ids=str(ADMIN),
        telegram_time_scale=conftest.TELEGRAM_SCALE,
        novofon_url=fake_novofon.url,
        novofon_key=KEY,
        novofon_secret=SECRET,
    )


async def call(
    app: Client, method: str, path: str, auth: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    response = await app.request(method, path, json=body, headers=auth)
    payload = await response.json() if response.status != 204 else None
    return response.status, payload


async def test_pbx_with_both_providers_asks_which_and_the_call_goes_through_it(
    app: Client,
    fake_telegram: FakeTelegram,
    fake_pbx: FakePbx,
    fake_novofon: FakeNovofon,
) -> None:
    server = app.server.app
    await feed(server, message(ADMIN, f"/addmanager {MANAGER} Андрей", chat_id=GROUP))
    await feed(server, message(MANAGER, "/pbx 100"))
    question = fake_telegram.in_thread(MANAGER, None)[-1]
    assert question.text == texts.WHICH_PBX
    choices = question.reply_markup["inline_keyboard"]
    assert [row[0]["text"] for row in choices] == ["MegaFon: 100", "Novofon: 100"]

    await feed(server, callback(MANAGER, choices[1][0]["callback_data"], chat_id=MANAGER))
    edited = fake_telegram.called("editMessageText")[-1].params["text"]
    assert "Логин АТС: 100" in edited and "АТС: Novofon" in edited
    await feed(server, message(MANAGER, "/call 8 900 444-33-22"))
    assert fake_telegram.in_thread(MANAGER, None)[-1].text == texts.CALL_STARTED
    assert fake_pbx.makecalls() == []  # not MegaFon's extension 100
    dialled = [r.params for r in fake_novofon.requests if r.path == "/v1/request/callback/"]
    assert dialled[-1]["from"] == "100" and dialled[-1]["to"] == "79004443322"

    await feed(server, message(MANAGER, "/pbx megafon andy"))
    assert "АТС: MegaFon" in (fake_telegram.in_thread(MANAGER, None)[-1].text or "")
    # A login can only be MegaFon's (Novofon has none): nothing to ask.
    await feed(server, message(MANAGER, "/pbx andy"))
    answer = fake_telegram.in_thread(MANAGER, None)[-1]
    assert answer.text != texts.WHICH_PBX
    assert "АТС: MegaFon" in (answer.text or "")
    await feed(server, message(MANAGER, "/pbx novofon andy"))
    assert "Novofon has no logins" in (fake_telegram.in_thread(MANAGER, None)[-1].text or "")

    # The user list offers both PBXs: MegaFon's users and Novofon's extensions.
    await feed(server, callback(MANAGER, "m:users:", chat_id=MANAGER))
    offered = fake_telegram.in_thread(MANAGER, None)[-1]
    assert texts.NOVOFON_BY_HAND in (offered.text or "")
    buttons = [row[0] for row in offered.reply_markup["inline_keyboard"]]
    assert buttons[0]["text"].startswith("MegaFon: Андрей Петров")
    assert [b["text"] for b in buttons if b["text"].startswith("Novofon")] == [
        "Novofon: доб. 100",
        "Novofon: доб. 101",
    ]
    await feed(server, callback(MANAGER, buttons[-1]["callback_data"], chat_id=MANAGER))
    edited = fake_telegram.called("editMessageText")[-1].params["text"]
    assert "Логин АТС: 101" in edited and "АТС: Novofon" in edited


async def test_managers_api_lists_creates_changes_and_removes_by_the_same_rules(
    app: Client, auth: dict[str, str], fake_novofon: FakeNovofon, fake_telegram: FakeTelegram
) -> None:
    status, body = await call(app, "POST", API, auth, {"telegram_user_id": MANAGER, "pbx": "100"})
    assert (status, body["error"], body["choices"]) == (
        400,
        "Provider needed",
        ["megafon", "novofon"],
    )
    status, made = await call(
        app,
        "POST",
        API,
        auth,
        {"telegram_user_id": MANAGER, "name": "Андрей", "provider": "novofon", "pbx": "100"},
    )
    assert status == 201
    assert (made["provider"], made["pbx_ext"], made["call_mode"], made["on_duty"]) == (
        "novofon",
        "100",
        "api",
        False,
    )
    status, again = await call(app, "POST", API, auth, {"telegram_user_id": MANAGER})
    assert (status, again["error"], again["id"]) == (409, "Manager exists", made["id"])

    status, changed = await call(
        app, "PATCH", f"{API}/{made['id']}", auth, {"on_duty": True, "pbx": "megafon andy"}
    )
    assert status == 200
    assert (changed["on_duty"], changed["provider"], changed["pbx_login"]) == (
        True,
        "megafon",
        "andy",
    )
    status, listed = await call(app, "GET", API, auth)
    assert [m["id"] for m in listed["managers"]] == [made["id"]]
    # The Telegram side sees the same manager.
    await feed(app.server.app, message(MANAGER, "/me"))
    settings_text = fake_telegram.in_thread(MANAGER, None)[-1].text or ""
    assert "Логин АТС: andy" in settings_text and "Дежурный: да" in settings_text

    # A call through the API uses the manager's provider.
    status, _ = await call(
        app, "PATCH", f"{API}/{made['id']}", auth, {"provider": "novofon", "pbx": "101"}
    )
    assert status == 200
    response = await app.post(
        "/api/v1/calls",
        json={"client_phone": "89004443322", "manager_id": made["id"]},
        headers=auth,
    )
    assert response.status == 200 and (await response.json())["provider"] == "novofon"

    status, _ = await call(app, "DELETE", f"{API}/{made['id']}", auth)
    assert status == 204
    status, kept = await call(app, "GET", f"{API}/{made['id']}", auth)
    assert (status, kept["telegram_user_id"]) == (200, None)  # the PBX knows them: kept


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"telegram_user_id": "abc"},
        {"telegram_user_id": 5, "call_mode": "loud"},
        {"telegram_user_id": 5, "unknown": 1},
        {"pbx": "novofon andy"},
        [1, 2],
    ],
)
async def test_bad_manager_input_is_a_clear_400(
    app: Client, auth: dict[str, str], body: Any
) -> None:
    status, answer = await call(app, "POST", API, auth, body)
    assert status == 400 and answer["error"] in ("Invalid parameters", "Provider needed")


async def test_unknown_manager_is_404_and_the_api_needs_the_token(
    app: Client, auth: dict[str, str]
) -> None:
    assert (await call(app, "PATCH", f"{API}/99", auth, {"on_duty": True}))[0] == 404
    assert (await call(app, "DELETE", f"{API}/99", auth))[0] == 404
    assert (await app.get(API)).status == 401
