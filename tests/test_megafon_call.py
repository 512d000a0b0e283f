"""megafon_call(client_phone, user): the API, the CLI, both PBX API generations, PBX failures."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from storage.db import Database
from tests.conftest import AppFactory
from tests.fakes.megafon import API_KEY, FakePbx
from tests.megafon_replay import load, replay

Client = TestClient[web.Request, web.Application]


async def call(client: Client, auth: dict[str, str], **body: Any) -> tuple[int, Any]:
    response = await client.post("/api/v1/megafon_call", json=body, headers=auth)
    return response.status, await response.json()


async def test_v1_makecall_then_the_pushes_attach_to_the_requested_call(
    client: Client, auth: dict[str, str], fake_pbx: FakePbx
) -> None:
    status, answer = await call(client, auth, client_phone="8 (900) 444-33-22", user="andy")
    assert status == 200, answer
    assert answer["phone"] == "79004443322"
    [request] = fake_pbx.makecalls()
    assert request.path == "/crmapi/v1/makecall"
    assert request.headers["X-API-KEY"] == API_KEY
    assert request.json == {"phone": "79004443322", "user": "andy"}

    # The PBX's pushes carry their own call id, not the one makecall answered.
    await replay(client, load("outbound_requested"))

    calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
    assert len(calls) == 1
    detail = await (await client.get(f"/api/v1/calls/{answer['call_id']}", headers=auth)).json()
    assert detail["requested"] is True
    assert detail["status"] == "Success"
    assert detail["direction"] == "out"
    assert detail["manager"] == "andy"
    assert detail["client_id"] == answer["client_id"]
    dialog = await (
        await client.get(f"/api/v1/clients/{answer['client_id']}/dialog", headers=auth)
    ).json()
    assert [m["text"] for m in dialog["messages"]] == [
        "megafon_call_event OUTGOING",
        "megafon_call_event ACCEPTED",
        "megafon_call_event COMPLETED",
        "megafon_call_status Success",
    ]


async def test_pushes_with_the_makecall_id_attach_too(client: Client, auth: dict[str, str]) -> None:
    status, answer = await call(client, auth, client_phone="79004443322", user="701")
    assert status == 200
    assert answer["pbx_callid"] == "fake-1"
    pushes = [{**p, "callid": "fake-1", "phone": "79004443322"} for p in load("outbound_requested")]
    await replay(client, pushes)
    detail = await (await client.get(f"/api/v1/calls/{answer['call_id']}", headers=auth)).json()
    assert (detail["callid"], detail["status"]) == ("fake-1", "Success")


@pytest.mark.parametrize(
    ("style", "expected_id"), [("json", "legacy-1"), ("text", "legacy-1"), ("empty", None)]
)
async def test_legacy_api_sends_a_form_with_the_token(
    make_client: AppFactory,
    db: Database,
    auth: dict[str, str],
    fake_pbx: FakePbx,
    style: str,
    expected_id: str | None,
) -> None:
    fake_pbx.legacy_style = style
    client = await make_client(db, megafon_api="legacy")
    status, answer = await call(client, auth, client_phone="+7 900 444 33 22", user="andy")
    assert status == 200, answer
    assert answer["pbx_callid"] == expected_id
    [request] = fake_pbx.makecalls()
    assert request.path == "/sys/crm_api.wcgp"
    assert request.form == {
        "cmd": "makeCall",
        "phone": "79004443322",
        "user": "andy",
        "token": API_KEY,
    }


async def test_pbx_refusal_is_502_with_its_message_and_nothing_stored(
    client: Client, auth: dict[str, str], fake_pbx: FakePbx
) -> None:
    fake_pbx.fail(501, {"message": "Функция отключена"})
    status, answer = await call(client, auth, client_phone="79004443322", user="andy")
    assert status == 502
    assert answer["error"] == "PBX refused the call"
    assert answer["message"] == "Функция отключена"
    assert answer["pbx_status"] == 501
    calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
    assert calls == []


async def test_wrong_pbx_key_is_reported(
    make_client: AppFactory, db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(db, megafon_api_key="not-the-key")
    status, answer = await call(client, auth, client_phone="79004443322", user="andy")
    assert (status, answer["message"]) == (502, "Invalid API key")


async def test_pbx_down_is_502(
    make_client: AppFactory, db: Database, auth: dict[str, str], unused_tcp_port: int
) -> None:
    client = await make_client(db, megafon_url=f"http://127.0.0.1:{unused_tcp_port}")
    status, answer = await call(client, auth, client_phone="79004443322", user="andy")
    assert status == 502
    assert "unreachable" in answer["message"]


async def test_pbx_too_slow_is_502(
    make_client: AppFactory, db: Database, auth: dict[str, str], fake_pbx: FakePbx
) -> None:
    fake_pbx.delay = 2.0
    client = await make_client(db, megafon_timeout=0.3)
    status, answer = await call(client, auth, client_phone="79004443322", user="andy")
    assert status == 502
    assert "did not answer in time" in answer["message"]


async def test_bad_requests_are_400(client: Client, auth: dict[str, str]) -> None:
    assert (await call(client, auth, client_phone="позвони", user="andy"))[0] == 400
    assert (await call(client, auth, client_phone="701", user="andy"))[0] == 400
    assert (await call(client, auth, client_phone="79004443322", user=" "))[0] == 400
    assert (await call(client, auth, client_phone="79004443322"))[0] == 400
    response = await client.post("/api/v1/megafon_call", data=b"{", headers=auth)
    assert response.status == 400


async def test_the_api_wants_the_bearer_token(
    client: Client, make_client: AppFactory, db: Database
) -> None:
    body = {"client_phone": "79004443322", "user": "andy"}
    response = await client.post("/api/v1/megafon_call", json=body)
    assert (response.status, (await response.json())["error"]) == (401, "Invalid token")
    response = await client.post(
        "/api/v1/megafon_call", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401
    no_token = await make_client(db, api_token=None)
    response = await no_token.get("/api/v1/calls", headers={"Authorization": "Bearer x"})
    answer = await response.json()
    assert (response.status, answer["error"]) == (401, "API disabled")
    assert "TRUBKA_API_TOKEN" in answer["detail"]


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_call_prints_the_call_and_fails_with_the_pbx_message(
    fake_pbx: FakePbx, tmp_path: Path
) -> None:
    env = {
        "TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "TRUBKA_MEGAFON_URL": fake_pbx.url,
        "TRUBKA_MEGAFON_API_KEY": API_KEY,
    }
    code, out, _ = await run_cli(env, "call", "8 900 444-33-22", "andy")
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["phone"] == "79004443322"
    assert fake_pbx.makecalls()[0].json == {"phone": "79004443322", "user": "andy"}

    fake_pbx.fail(400, {"message": "Нет такого пользователя"})
    code, _, err = await run_cli(env, "call", "79004443322", "nobody")
    assert code == 1
    assert "Нет такого пользователя" in err

    code, _, err = await run_cli(env, "call", "garbage", "andy")
    assert code == 2
    assert "phone" in err
