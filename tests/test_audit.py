"""The audit log: each state-changing action — over the API, in Telegram, on the command line —
is one row naming who did it, from where, on what, and how it ended."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from storage.db import Database
from storage.models import Call
from telephony.access import audit
from tests.conftest import AppFactory
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import FakeTelegram
from tests.megafon_replay import load, replay
from tests.telegram_updates import (
    ADMIN,
    GROUP,
    MANAGER,
    callback,
    feed,
    flush,
    message,
    telegram_app_settings,
)
from tests.test_access import cli_env
from tests.test_megafon_call import run_cli

Client = TestClient[web.Request, web.Application]


async def _token(client: Client, auth: dict[str, str], name: str, scope: str) -> dict[str, str]:
    made = await client.post("/api/v1/tokens", json={"name": name, "scopes": [scope]}, headers=auth)
    assert made.status == 201
    return {"Authorization": f"Bearer {(await made.json())['token']}"}


async def test_every_action_is_one_row_with_its_actor(
    any_db: Database,
    make_client: AppFactory,
    fake_telegram: FakeTelegram,
    fake_pbx: FakePbx,
    auth: dict[str, str],
) -> None:
    client = await make_client(
        any_db,
        **telegram_app_settings(fake_telegram.url),
    )
    app = client.server.app
    assert app is not None
    # Telegram: an admin adds a manager, who binds a PBX login and changes the call mode.
    await feed(app, message(ADMIN, f"/addmanager {MANAGER} Андрей", chat_id=GROUP))
    await feed(app, message(MANAGER, "/pbx andy"))
    await feed(app, callback(MANAGER, "m:mode:api", chat_id=MANAGER))
    # A missed call: the manager calls back with 📞 and takes it with «Беру».
    await replay(client, load("inbound_missed"))
    await flush(app)
    async with any_db.session() as session:
        call = (await session.exec(Call.__table__.select())).first()  # type: ignore[attr-defined]
    assert call is not None
    client_id, call_id = call.client_id, call.id
    await feed(app, callback(MANAGER, f"c:call:{client_id}"))
    await feed(app, callback(MANAGER, f"t:take:{call_id}", chat_id=MANAGER))
    # The API: named tokens (made with the bootstrap token), a call, the managers.
    crm = await _token(client, auth, "crm", "calls:write")
    hr = await _token(client, auth, "hr", "managers:admin")
    placed = await client.post(
        "/api/v1/megafon_call", json={"client_phone": "79004443322", "user": "andy"}, headers=crm
    )
    assert placed.status == 200
    made = await client.post(
        "/api/v1/managers", json={"name": "Ольга", "telegram_user_id": 777}, headers=hr
    )
    assert made.status == 201, await made.text()
    manager_id = (await made.json())["id"]
    path = f"/api/v1/managers/{manager_id}"
    assert (await client.patch(path, json={"name": "Ольга П."}, headers=hr)).status == 200
    assert (await client.delete(path, headers=hr)).status == 204
    assert (await client.delete("/api/v1/tokens/hr", headers=auth)).status == 204
    # The command line: re-apply pushes, re-send leads.
    env = cli_env(any_db)
    assert (await run_cli(env, "inbox", "reapply", "--all"))[0] == 0
    assert (await run_cli(env, "outbox", "retry", "--all-dead"))[0] == 0
    # A client erased.
    assert (await client.delete(f"/api/v1/clients/{client_id}", headers=auth)).status == 200

    response = await client.get("/api/v1/audit", headers=auth)
    assert response.status == 200
    rows: list[dict[str, Any]] = (await response.json())["entries"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_action.setdefault(row["action"], []).append(row)
    telegram_admin = f"telegram:{ADMIN}"
    telegram_manager = f"telegram:{MANAGER}"
    actors = {(row["action"], row["actor"].split(" ")[0]) for row in rows}
    assert Counter(row["action"] for row in rows) == {
        "manager.add": 2,
        "manager.change": 2,
        "manager.mode": 1,
        "manager.remove": 1,
        "call.place": 2,
        "call.take": 1,
        "token.create": 2,
        "token.revoke": 1,
        "push.reapply": 1,
        "lead.resend": 1,
        "client.forget": 1,
    }, rows
    assert actors >= {
        ("manager.add", telegram_admin),
        ("manager.change", telegram_manager),
        ("manager.mode", telegram_manager),
        ("call.place", telegram_manager),
        ("call.take", telegram_manager),
        ("call.place", "token:crm"),
        ("manager.add", "token:hr"),
        ("manager.change", "token:hr"),
        ("manager.remove", "token:hr"),
        ("token.create", "token:TRUBKA_API_TOKEN"),
        ("token.revoke", "token:TRUBKA_API_TOKEN"),
        ("client.forget", "token:TRUBKA_API_TOKEN"),
    }
    assert by_action["push.reapply"][0]["actor"].startswith("cli:")
    assert by_action["lead.resend"][0]["address"] == "cli"
    assert by_action["client.forget"][0]["object"] == f"client:{client_id}"
    api_call = next(r for r in by_action["call.place"] if r["actor"] == "token:crm")
    assert api_call["address"] == "127.0.0.1" and api_call["object"].startswith("call:")
    assert api_call["outcome"] == "ok"
    # `since` and the command line read the same rows.
    later = await client.get("/api/v1/audit", params={"since": "2999-01-01"}, headers=auth)
    assert (await later.json())["entries"] == []
    bad = await client.get("/api/v1/audit", params={"since": "yesterday"}, headers=auth)
    assert bad.status == 400
    code, out, _ = await run_cli(env, "audit", "--since", "2000-01-01")
    assert code == 0 and "client.forget" in out and "token:crm" in out
    # Refused attempts are rows too: a token without the scope tries to place a call.
    reader = await _token(client, auth, "reader", "calls:read")
    refused = await client.post(
        "/api/v1/megafon_call", json={"client_phone": "79004443322", "user": "andy"}, headers=reader
    )
    assert refused.status == 403
    last = (await audit.entries(any_db))[-1]
    assert (last.actor, last.action, last.outcome) == (
        "token:reader",
        "call.place",
        "403 no calls:write",
    )


async def test_a_call_from_the_shell_is_a_row(fake_pbx: FakePbx, db: Database) -> None:
    env = {
        **cli_env(db),
        "TRUBKA_MEGAFON_URL": fake_pbx.url,
        "TRUBKA_MEGAFON_API_KEY": "test-pbx-key",
    }
    assert (await run_cli(env, "call", "8 900 444-33-22", "andy"))[0] == 0
    fake_pbx.fail(400, {"message": "Нет такого пользователя"})
    assert (await run_cli(env, "call", "79004443322", "nobody"))[0] == 1
    rows = await audit.entries(db)
    assert [(r.action, r.outcome) for r in rows] == [
        ("call.place", "ok"),
        ("call.place", "pbx refused"),
    ]
    assert all(r.actor.startswith("cli:") and r.address == "cli" for r in rows)
