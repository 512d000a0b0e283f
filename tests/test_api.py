"""The read API and the operations endpoints."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from storage.db import Database
from tests.conftest import AppFactory
from tests.megafon_replay import load, replay

Client = TestClient[web.Request, web.Application]


async def test_client_by_any_written_phone_and_by_id(client: Client, auth: dict[str, str]) -> None:
    await replay(client, load("inbound_answered"))
    for written in ["79101234567", "8 (910) 123-45-67", "+7 910 123 45 67", "9101234567"]:
        response = await client.get("/api/v1/clients", params={"phone": written}, headers=auth)
        assert response.status == 200
        person = await response.json()
        assert person["phone"] == "79101234567"
    by_id = await (await client.get(f"/api/v1/clients/{person['id']}", headers=auth)).json()
    assert by_id == person
    assert set(by_id) >= {"id", "name", "phone", "channel", "variables"}


async def test_unknown_ids_are_404_and_bad_queries_400(
    client: Client, auth: dict[str, str]
) -> None:
    for path in ["/api/v1/clients/999", "/api/v1/clients/999/dialog", "/api/v1/calls/999"]:
        response = await client.get(path, headers=auth)
        assert response.status == 404
        assert "error" in await response.json()
    for path in [
        "/api/v1/clients?phone=nonsense",
        "/api/v1/clients",
        "/api/v1/calls?limit=0",
        "/api/v1/calls?limit=many",
        "/api/v1/calls?limit=100000",
        "/api/v1/calls?phone=12",
    ]:
        response = await client.get(path, headers=auth)
        assert response.status == 400, path
        assert "error" in await response.json()
    response = await client.get("/api/v1/nothing-here", headers=auth)
    assert response.status == 404
    assert (await response.json())["error"] == "Not Found"


async def test_calls_newest_first_filtered_and_limited(
    client: Client, auth: dict[str, str]
) -> None:
    await replay(client, load("inbound_answered"))
    await replay(client, load("inbound_missed"))
    await replay(client, load("transfer"))
    calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
    assert [c["phone"] for c in calls] == ["79261112233", "79169998877", "79101234567"]
    limited = await (await client.get("/api/v1/calls?limit=1", headers=auth)).json()
    assert [c["phone"] for c in limited["calls"]] == ["79261112233"]
    by_phone = await (
        await client.get("/api/v1/calls", params={"phone": "8 916 999 88 77"}, headers=auth)
    ).json()
    assert [c["status"] for c in by_phone["calls"]] == ["Missed"]


async def test_call_detail_has_events_attribution_and_flags(
    client: Client, auth: dict[str, str]
) -> None:
    await replay(client, load("inbound_missed"))
    [summary] = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
    detail = await (await client.get(f"/api/v1/calls/{summary['id']}", headers=auth)).json()
    assert {
        "direction",
        "status",
        "manager",
        "duration",
        "record_link",
        "events",
        "attribution",
        "flags",
    } <= set(detail)
    assert [e["command"] for e in detail["events"]] == ["event", "event", "history"]
    assert detail["events"][-1]["fields"]["status"] == "missed"  # raw as received


async def test_dialog_pages_oldest_first(client: Client, auth: dict[str, str]) -> None:
    await replay(client, load("inbound_answered"))
    [summary] = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
    path = f"/api/v1/clients/{summary['client_id']}/dialog"
    first = (await (await client.get(path + "?limit=2", headers=auth)).json())["messages"]
    rest = (await (await client.get(f"{path}?after_id={first[-1]['id']}", headers=auth)).json())[
        "messages"
    ]
    texts = [m["text"] for m in first + rest]
    assert texts[0] == "megafon_call_event INCOMING" and texts[-1] == "megafon_call_status Success"
    assert len(texts) == 6


async def test_healthz_and_metrics(client: Client) -> None:
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})
    await replay(client, load("inbound_missed"))
    metrics = await (await client.get("/metrics")).text()
    assert 'trubka_webhooks_total{command="history",outcome="ok",provider="megafon"} 1.0' in metrics


async def test_healthz_is_503_when_the_database_is_unreachable(
    make_client: AppFactory, unused_tcp_port: int
) -> None:
    unreachable = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{unused_tcp_port}/none")
    client = await make_client(unreachable)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["status"] == "error"
    await unreachable.dispose()
