"""POST /megafon_webhook over real HTTP, on SQLite and PostgreSQL, with replayed PBX pushes."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.megafon_replay import load, push, replay

Client = TestClient[web.Request, web.Application]


async def get(client: Client, path: str, auth: dict[str, str]) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def only_call(client: Client, phone: str, auth: dict[str, str]) -> dict[str, Any]:
    calls = (await get(client, f"/api/v1/calls?phone={phone}", auth))["calls"]
    assert len(calls) == 1, calls
    detail: dict[str, Any] = await get(client, f"/api/v1/calls/{calls[0]['id']}", auth)
    return detail


async def dialog_texts(client: Client, client_id: int, auth: dict[str, str]) -> list[str]:
    dialog = await get(client, f"/api/v1/clients/{client_id}/dialog", auth)
    return [message["text"] for message in dialog["messages"]]


async def test_answered_group_call_ends_as_success_with_the_answering_manager(
    client: Client, auth: dict[str, str]
) -> None:
    await replay(client, load("inbound_answered"))

    call = await only_call(client, "79101234567", auth)
    assert call["status"] == "Success"
    assert call["direction"] == "in"
    assert call["answered"] is True
    assert call["manager"] == "andy"  # bob's CANCELLED leg does not make him the manager
    assert call["duration"] == 124
    assert call["diversion"] == "74950001122"
    assert call["record_link"].endswith("/79101234567.mp3")
    assert call["started_at"] == "2017-07-03T12:11:10Z"
    assert [e["type"] for e in call["events"] if e["command"] == "event"] == [
        "INCOMING",
        "INCOMING",
        "ACCEPTED",
        "CANCELLED",
        "COMPLETED",
    ]
    assert all("crm_token" not in e["fields"] for e in call["events"])

    texts = await dialog_texts(client, call["client_id"], auth)
    assert texts == [
        "megafon_call_event INCOMING",
        "megafon_call_event INCOMING",
        "megafon_call_event ACCEPTED",
        "megafon_call_event CANCELLED",
        "megafon_call_event COMPLETED",
        "megafon_call_status Success",
    ]
    person = await get(client, f"/api/v1/clients/{call['client_id']}", auth)
    assert person["channel"] == "telephony"
    assert person["phone"] == "79101234567"
    assert person["responsible"] == "andy"
    assert person["variables"] == {
        "megafon_call_direction": "in",
        "megafon_call_ext": "701",
        "megafon_call_id": "B10D0EB124F4E64AF4EA-1511",
        "megafon_call_user": "andy",
        "megafon_record_link": call["record_link"],
    }


async def test_duplicates_change_nothing_and_answer_200(
    client: Client, auth: dict[str, str]
) -> None:
    pushes = load("inbound_answered")
    await replay(client, pushes)
    before = await only_call(client, "79101234567", auth)
    dialog_before = await dialog_texts(client, before["client_id"], auth)

    for fields in pushes:  # the PBX repeats every push, in another order
        status, _ = await push(client, fields)
        assert status == 200
    for fields in reversed(pushes):
        assert (await push(client, fields))[0] == 200

    after = await only_call(client, "79101234567", auth)
    assert after == before
    assert await dialog_texts(client, after["client_id"], auth) == dialog_before


async def test_history_before_events_keeps_the_outcome(
    client: Client, auth: dict[str, str]
) -> None:
    pushes = load("inbound_answered")
    history = pushes[-1]
    await replay(client, [history, *pushes[1:-1]])

    call = await only_call(client, "79101234567", auth)
    assert call["status"] == "Success"
    assert call["manager"] == "andy"
    assert call["duration"] == 124
    texts = await dialog_texts(client, call["client_id"], auth)
    assert texts[0] == "megafon_call_status Success"
    assert len(texts) == 6


async def test_any_order_ends_in_the_same_state(client: Client, auth: dict[str, str]) -> None:
    pushes = load("inbound_answered")[1:]
    shuffled = pushes[:]
    random.Random(7).shuffle(shuffled)
    await replay(client, shuffled)
    call = await only_call(client, "79101234567", auth)
    assert (call["status"], call["answered"], call["manager"], call["duration"]) == (
        "Success",
        True,
        "andy",
        124,
    )


async def test_missed_call_from_unknown_number_creates_a_telephony_client(
    client: Client, auth: dict[str, str]
) -> None:
    missing = await client.get("/api/v1/clients?phone=8 916 999-88-77", headers=auth)
    assert missing.status == 404

    await replay(client, load("inbound_missed"))

    person = await get(client, "/api/v1/clients?phone=8 (916) 999-88-77", auth)
    assert person["channel"] == "telephony"
    assert person["phone"] == "79169998877"
    assert person["responsible"] is None  # nobody talked to them
    call = await only_call(client, "79169998877", auth)
    assert call["status"] == "Missed"  # `missed` stored in its canonical form
    assert call["answered"] is False
    assert call["client_id"] == person["id"]
    assert await dialog_texts(client, person["id"], auth) == [
        "megafon_call_event INCOMING",
        "megafon_call_event CANCELLED",
        "megafon_call_status Missed",
    ]
    assert person["variables"]["megafon_call_user"] == "pbx"


async def test_cancelled_after_accepted_does_not_make_a_missed_call(
    client: Client, auth: dict[str, str]
) -> None:
    base = {"cmd": "event", "phone": "79101234567", "callid": "GRP-1"}
    for event_type, user in [
        ("INCOMING", "andy"),
        ("INCOMING", "bob"),
        ("ACCEPTED", "bob"),
        ("CANCELLED", "andy"),
        ("COMPLETED", "bob"),
    ]:
        assert (await push(client, {**base, "type": event_type, "user": user}))[0] == 200
    call = await only_call(client, "79101234567", auth)
    assert call["answered"] is True
    assert call["manager"] == "bob"
    assert call["status"] is None  # the outcome waits for history
    status, _ = await push(
        client,
        {
            "cmd": "history",
            "type": "in",
            "status": "SUCCESS",
            "phone": "79101234567",
            "user": "bob",
            "start": "20241202T101010Z",
            "duration": "40",
            "callid": "GRP-1",
        },
    )
    assert status == 200
    assert (await only_call(client, "79101234567", auth))["status"] == "Success"


async def test_transfer_merges_the_legs_into_one_conversation(
    client: Client, auth: dict[str, str]
) -> None:
    await replay(client, load("transfer"))
    call = await only_call(client, "79261112233", auth)
    assert call["status"] == "Success"
    assert call["manager"] == "bob"  # history of the second leg names who talked last
    assert call["callid"] == "LEG-ONE-1"
    assert call["duration"] == 310
    assert len(call["events"]) == 7


async def test_transfer_merges_legs_seen_before_the_transfer_event(
    client: Client, auth: dict[str, str]
) -> None:
    pushes = load("transfer")
    transfer = pushes[2]
    await replay(client, [p for p in pushes if p is not transfer])
    calls = (await get(client, "/api/v1/calls?phone=79261112233", auth))["calls"]
    assert len(calls) == 2  # two legs, not yet known to be one conversation
    await replay(client, [transfer])
    call = await only_call(client, "79261112233", auth)
    assert call["status"] == "Success"
    assert call["answered"] is True
    assert len(call["events"]) == 7
    texts = await dialog_texts(client, call["client_id"], auth)
    assert texts.count("megafon_call_event ACCEPTED") == 2
    assert texts[-1] == "megafon_call_event TRANSFERRED"


async def test_json_body_is_accepted_too(client: Client, auth: dict[str, str]) -> None:
    pushes = load("inbound_missed")
    for fields in pushes:
        status, _ = await push(client, fields, as_json=True)
        assert status == 200
    assert (await only_call(client, "79169998877", auth))["status"] == "Missed"


async def test_internal_call_between_extensions_creates_no_client(
    client: Client, auth: dict[str, str]
) -> None:
    status, _ = await push(
        client,
        {"cmd": "event", "type": "INCOMING", "phone": "702", "user": "andy", "callid": "INT-1"},
    )
    assert status == 200
    calls = (await get(client, "/api/v1/calls", auth))["calls"]
    assert calls[0]["internal"] is True
    assert calls[0]["client_id"] is None


async def test_wrong_or_missing_token_is_401(client: Client, auth: dict[str, str]) -> None:
    fields = load("inbound_missed")[0]
    assert await push(client, fields, token="wrong") == (401, {"error": "Invalid token"})
    assert await push(client, fields, token=None) == (401, {"error": "Invalid token"})
    assert (await get(client, "/api/v1/calls", auth))["calls"] == []


async def test_missing_and_invalid_fields_are_400_naming_the_field(client: Client) -> None:
    history = load("inbound_missed")[-1]
    cases = [
        ({k: v for k, v in history.items() if k != "callid"}, "callid"),
        ({**history, "start": "yesterday"}, "start"),
        ({**history, "duration": "-3"}, "duration"),
        ({**history, "type": "sideways"}, "type"),
        ({**history, "phone": "not a phone"}, "phone"),
        ({**history, "cmd": "reboot"}, "cmd"),
    ]
    for fields, field in cases:
        status, answer = await push(client, fields)
        assert status == 400, fields
        assert answer["error"] == "Invalid parameters"
        assert answer["field"] == field


async def test_garbage_bodies_are_400_not_500(client: Client) -> None:
    bodies: list[tuple[bytes, str]] = [
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"cmd": {"nested": true}}', "application/json"),
        (b"", "text/plain"),
        (b"cmd=history&crm_token=test-crm-token&cmd=event", "application/x-www-form-urlencoded"),
    ]
    for body, content_type in bodies:
        response = await client.post(
            "/megafon_webhook", data=body, headers={"Content-Type": content_type}
        )
        assert 400 <= response.status < 500, (body, response.status)
        assert "error" in await response.json()


async def test_contact_answers_name_and_responsible_manager(
    client: Client, auth: dict[str, str]
) -> None:
    unknown = {"cmd": "contact", "phone": "79101234567", "callid": "X-1"}
    assert await push(client, unknown) == (200, {})
    await replay(client, load("inbound_answered"))

    status, answer = await push(client, {**unknown, "callid": "X-2"})
    assert status == 200
    assert answer == {"responsible": "andy"}  # no name is known yet, only the manager


async def test_rating_is_stored_on_the_call(client: Client, auth: dict[str, str]) -> None:
    await replay(client, load("inbound_answered"))
    status, _ = await push(
        client,
        {
            "cmd": "rating",
            "callid": "B10D0EB124F4E64AF4EA-1511",
            "phone": "79101234567",
            "user": "andy",
            "rating": "5",
        },
    )
    assert status == 200
    assert (await only_call(client, "79101234567", auth))["rating"] == 5
