"""`/ct/` over real HTTP on SQLite and PostgreSQL: visits, pings, CORS, bad input, the script,
and a MegaFon call to a leased number attributed to its visit (seen through /api/v1)."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database
from storage.tracking_models import TrackingVisit
from tests.conftest import AppFactory
from tests.megafon_replay import load, replay
from tests.tracking_support import (
    CHROME,
    DEFAULT,
    DIRECT,
    DIRECT_STATIC,
    SITE,
    SITE_POOL,
    Client,
    visit,
    write_config,
)

AD = (
    f"{SITE}/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&utm_term=taxi&yclid=98765"
)


@pytest.fixture
async def tracked(make_client: AppFactory, any_db: Database, tmp_path: Path) -> Client:
    return await make_client(any_db, config=write_config(tmp_path))


async def ping(client: Client, body: Any, origin: str | None = SITE) -> tuple[int, Any]:
    headers = {"Content-Type": "text/plain", "Origin": origin} if origin else {}
    response = await client.post("/ct/v1/ping", data=json.dumps(body), headers=headers)
    return response.status, await response.json()


async def test_a_visit_gets_a_number_of_its_pool_and_keeps_it(tracked: Client) -> None:
    status, first = await visit(tracked, AD, metrika_client_id="1700000000123", ga="GA1.2.111.222")
    assert status == 200, first
    assert first["number"] == DIRECT[0]
    assert first["formatted"] == "+7 (495) 000-00-01"
    assert first["visit_id"] and first["expires_at"].endswith("Z")

    status, again = await visit(tracked, f"{SITE}/prices", visit_id=first["visit_id"])
    assert status == 200
    assert (again["visit_id"], again["number"]) == (first["visit_id"], first["number"])

    status, pinged = await ping(tracked, {"visit_id": first["visit_id"], "metrika_client_id": "x"})
    assert status == 200
    assert pinged["number"] == first["number"]
    assert pinged["expires_at"] >= again["expires_at"]

    # Another visitor from the same campaign gets the other number, a third the static one.
    _, second = await visit(tracked, AD)
    _, third = await visit(tracked, AD)
    assert second["number"] == DIRECT[1]
    assert (third["number"], third["expires_at"]) == (DIRECT_STATIC, None)
    # Organic and direct traffic: the default pool.
    _, organic = await visit(tracked, f"{SITE}/", referrer="https://www.google.com/")
    assert organic["number"] == SITE_POOL[0]


async def test_robots_and_excluded_addresses_see_the_default_number(tracked: Client) -> None:
    for agent in ("Mozilla/5.0 (compatible; YandexBot/3.0)", ""):
        status, answer = await visit(tracked, AD, agent=agent)
        assert status == 200
        assert answer == {
            "visit_id": None,
            "number": DEFAULT,
            "formatted": "+7 (495) 123-45-67",
            "expires_at": None,
        }
    # The office behind our reverse proxy (the test client connects from 127.0.0.1, trusted).
    _, office = await visit(tracked, AD, headers={"X-Forwarded-For": "203.0.113.77"})
    assert (office["visit_id"], office["number"]) == (None, DEFAULT)
    _, person = await visit(tracked, AD, headers={"X-Forwarded-For": "192.0.2.5"})
    assert person["number"] == DIRECT[0]


async def test_cors_admits_only_the_configured_sites(tracked: Client) -> None:
    preflight = await tracked.options(
        "/ct/v1/visit",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    status, answer = await visit(tracked, AD, origin="https://evil.example")
    assert (status, answer["error"]) == (403, "Origin not allowed")
    refused = await tracked.options("/ct/v1/ping", headers={"Origin": "https://evil.example"})
    assert refused.status == 403

    response = await tracked.post(
        "/ct/v1/visit", data=json.dumps({"url": AD}), headers={"Origin": SITE, "User-Agent": CHROME}
    )
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    # Errors carry the header too, so the script can read them.
    bad = await tracked.post("/ct/v1/visit", data="{", headers={"Origin": SITE})
    assert bad.status == 400 and bad.headers["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", None),
        ("[1, 2]", None),
        ("{}", "url"),
        ('{"url": "javascript:alert(1)"}', "url"),
        ('{"url": 5}', "url"),
        (json.dumps({"url": AD, "utm_source": "x" * 301}), "utm_source"),
        (json.dumps({"url": AD, "visit_id": {"a": 1}}), "visit_id"),
    ],
)
async def test_bad_visit_bodies_are_400_json(tracked: Client, body: str, field: str | None) -> None:
    response = await tracked.post("/ct/v1/visit", data=body, headers={"Origin": SITE})
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "Invalid parameters"
    assert answer.get("field") == field


async def test_bad_and_unknown_pings(tracked: Client) -> None:
    status, answer = await ping(tracked, {})
    assert (status, answer["field"]) == (400, "visit_id")
    status, answer = await ping(tracked, {"visit_id": "nope"})
    assert (status, answer["error"]) == (404, "Unknown visit")
    huge = await tracked.post("/ct/v1/ping", data="x" * 20000, headers={"Origin": SITE})
    assert huge.status == 413


async def test_without_pools_tracking_answers_404_and_the_script_does_nothing(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    status, answer = await visit(client, AD)
    assert (status, answer["error"]) == (404, "Call tracking is not configured")
    script = await client.get("/ct/tracker.js")
    assert script.status == 200
    assert "var C = null" in await script.text()


async def test_the_script_is_small_and_carries_the_site_settings(tracked: Client) -> None:
    response = await tracked.get("/ct/tracker.js", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.content_type == "application/javascript"
    text = await response.text()
    assert f'"n": "{DEFAULT}"' in text and '"c": ["zphone"]' in text and '"p": 30' in text
    assert "//" not in text.replace("://", "")  # comments stripped
    assert len(gzip.compress(text.encode(), 9)) <= 3 * 1024


def history_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


async def test_a_megafon_call_to_a_leased_number_is_attributed_to_the_visit(
    tracked: Client, auth: dict[str, str]
) -> None:
    _, seen = await visit(
        tracked, AD, metrika_client_id="1700000000123", roistat_visit="5501", ga="GA1.2.111.222"
    )
    pushes = load("inbound_answered")[1:]
    for fields in pushes:
        fields["diversion"] = seen["number"]
        if fields["cmd"] == "history":
            fields["start"] = history_time(datetime.now(UTC))
    await replay(tracked, pushes)
    await replay(tracked, pushes)  # repeated pushes change nothing

    calls = await (await tracked.get("/api/v1/calls?phone=79101234567", headers=auth)).json()
    call = await (
        await tracked.get(f"/api/v1/calls/{calls['calls'][0]['id']}", headers=auth)
    ).json()
    attribution = call["attribution"]
    assert attribution["method"] == "tracking"
    assert attribution["visit_id"] == seen["visit_id"]
    assert attribution["tracking_number"] == seen["number"]
    assert attribution["channel_level"] is False
    assert attribution["source"] == "Яндекс.Директ"
    assert (attribution["utm_source"], attribution["utm_medium"]) == ("yandex", "cpc")
    assert (attribution["utm_campaign"], attribution["utm_term"]) == ("spring", "taxi")
    assert attribution["yclid"] == "98765"
    assert attribution["metrika_client_id"] == "1700000000123"
    assert attribution["roistat_visit"] == "5501"
    assert attribution["ga_client_id"] == "111.222"
    assert attribution["landing_url"] == AD

    person = await (await tracked.get(f"/api/v1/clients/{call['client_id']}", headers=auth)).json()
    variables = person["variables"]
    assert variables["utm_source"] == "yandex"
    assert variables["utm_campaign"] == "spring"
    assert variables["yclid"] == "98765"
    assert variables["tracking_source"] == "Яндекс.Директ"
    assert variables["megafon_call_id"] == "B10D0EB124F4E64AF4EA-1511"


async def test_calls_nobody_held_are_channel_level_and_other_lines_are_not_tracked(
    tracked: Client, auth: dict[str, str]
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    cases = {"79160000001": SITE_POOL[1], "79160000002": DIRECT_STATIC, "79160000003": DEFAULT}
    for caller, dialled in cases.items():
        for fields in load("inbound_missed")[2:]:  # the history alone (events were lost)
            fields.update(
                phone=caller, diversion=dialled, callid=f"h-{caller}", start=history_time(yesterday)
            )
            await replay(tracked, [fields])
    found = {}
    for caller in cases:
        calls = await (await tracked.get(f"/api/v1/calls?phone={caller}", headers=auth)).json()
        detail = await (
            await tracked.get(f"/api/v1/calls/{calls['calls'][0]['id']}", headers=auth)
        ).json()
        found[caller] = detail["attribution"]
    assert found["79160000001"]["channel_level"] is True
    assert found["79160000001"]["source"] == "Сайт"
    assert found["79160000001"]["visit_id"] is None
    assert found["79160000002"]["channel_level"] is True
    assert found["79160000002"]["source"] == "Яндекс.Директ"
    assert found["79160000003"] == {}


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


async def test_the_visit_is_stored_with_its_context(tracked: Client, any_db: Database) -> None:
    _, seen = await visit(
        tracked,
        AD,
        agent=IPHONE,
        headers={"X-Forwarded-For": "192.0.2.44"},
        referrer="https://yandex.ru/search/?text=taxi",
        metrika_client_id="1700000000123",
        roistat_visit="5501",
        ga="GA1.2.111.222",
    )
    async with any_db.session() as session:
        stored = await session.get(TrackingVisit, seen["visit_id"])
    assert stored is not None
    assert (stored.pool, stored.source) == ("direct", "Яндекс.Директ")
    assert (stored.utm_source, stored.utm_medium, stored.utm_campaign) == (
        "yandex",
        "cpc",
        "spring",
    )
    assert (stored.utm_term, stored.yclid) == ("taxi", "98765")
    assert (stored.metrika_client_id, stored.roistat_visit) == ("1700000000123", "5501")
    assert stored.ga_client_id == "111.222"
    assert stored.referrer == "https://yandex.ru/search/?text=taxi"
    assert stored.landing_url == AD
    assert (stored.device, stored.ip) == ("mobile", "192.0.2.44")


async def test_visitors_arriving_together_get_different_numbers(tracked: Client) -> None:
    answers = await asyncio.gather(*(visit(tracked, f"{SITE}/") for _ in range(4)))
    numbers = [answer["number"] for status, answer in answers if status == 200]
    assert sorted(numbers) == sorted([*SITE_POOL, DEFAULT])  # three numbers, then the default
