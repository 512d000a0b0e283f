"""Pool protection over real HTTP: request budgets per address and per network (429 with
Retry-After), live-lease caps, what is never limited, and the short-call fraud flag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.db import Database
from telephony.tracking.guard import holder_of
from tests.conftest import AppFactory
from tests.megafon_replay import load, replay
from tests.tracking_support import DEFAULT, SITE, SITE_POOL, TOML, Client, visit, write_config

LIMITS = """
[tracking.limits]
requests_per_minute = 1
burst = 3
network_requests_per_minute = 1
network_burst = 5
leases_per_address = 0
leases_per_network = 0
"""

CAPS = """
[tracking.limits]
leases_per_address = 2
leases_per_network = 3
"""

SHORT = """
[tracking.short_calls]
seconds = 10
min_calls = 3
window_hours = 24
"""


def with_section(section: str) -> str:
    # Tables after [tracking.lease] and before the pools: still inside [tracking].
    return TOML.replace("[[tracking.pools]]", section + "\n[[tracking.pools]]", 1)


async def serve(make_client: AppFactory, db: Database, tmp_path: Path, section: str) -> Client:
    return await make_client(db, config=write_config(tmp_path, with_section(section)))


def from_(address: str) -> dict[str, str]:
    """Requests as they come through the local reverse proxy (127.0.0.1 is trusted)."""
    return {"X-Forwarded-For": address}


async def test_an_address_over_its_budget_gets_429_with_retry_after(
    make_client: AppFactory, db: Database, tmp_path: Path
) -> None:
    client = await serve(make_client, db, tmp_path, LIMITS)
    answers = [await visit(client, headers=from_("95.31.18.7")) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]

    response = await client.post(
        "/ct/v1/visit",
        data=json.dumps({"url": f"{SITE}/"}),
        headers={"Origin": SITE, "User-Agent": "Mozilla/5.0 (X11)", **from_("95.31.18.7")},
    )
    assert response.status == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert await response.json() == {"error": "Too many requests", "retry_after": wait}
    assert response.headers["Access-Control-Allow-Origin"] == SITE  # the page can read it

    # Pings spend the same budget.
    ping = await client.post(
        "/ct/v1/ping",
        data=json.dumps({"visit_id": answers[0][1]["visit_id"]}),
        headers={"Origin": SITE, **from_("95.31.18.7")},
    )
    assert ping.status == 429 and "Retry-After" in ping.headers

    # The same /24 shares a network budget (5): a neighbour gets two, then 429 as well.
    neighbour = [(await visit(client, headers=from_("95.31.18.99")))[0] for _ in range(3)]
    assert neighbour == [200, 200, 429]
    # IPv6: one /48 is one network.
    assert (await visit(client, headers=from_("2a02:6b8:b010:1::5")))[0] == 200
    # Another network is untouched.
    assert (await visit(client, headers=from_("178.176.40.2")))[0] == 200


async def test_private_loopback_and_office_addresses_are_never_limited(
    make_client: AppFactory, db: Database, tmp_path: Path
) -> None:
    client = await serve(make_client, db, tmp_path, LIMITS)
    # A proxy missing from trusted_proxies looks like one private address for everybody.
    for address in ("10.0.0.5", "127.0.0.1"):
        statuses = [(await visit(client, headers=from_(address)))[0] for _ in range(6)]
        assert statuses == [200] * 6
    office = [(await visit(client, headers=from_("198.51.100.7")))[0] for _ in range(6)]
    assert office == [200] * 6


async def test_live_leases_are_capped_per_address_and_per_network(
    make_client: AppFactory, any_db: Database, tmp_path: Path
) -> None:
    client = await serve(make_client, any_db, tmp_path, CAPS)
    a = [(await visit(client, headers=from_("95.31.18.7")))[1] for _ in range(3)]
    assert [answer["number"] for answer in a[:2]] == SITE_POOL[:2]
    # Over the address's cap: the pool's static number (here none: the site's own), still a
    # stored visit, so the call is known by source when the pool has a static number.
    assert a[2]["number"] == DEFAULT and a[2]["visit_id"] and a[2]["expires_at"] is None
    # The same visitor keeps their own lease: pings and page views are not new leases.
    _, again = await visit(client, visit_id=a[0]["visit_id"], headers=from_("95.31.18.7"))
    assert again["number"] == SITE_POOL[0] and again["expires_at"] is not None
    # A neighbour in the same /24 takes the network's third lease, the next one is capped.
    _, b = await visit(client, headers=from_("95.31.18.8"))
    _, c = await visit(client, headers=from_("95.31.18.9"))
    assert (b["number"], c["number"]) == (SITE_POOL[2], DEFAULT)


def history_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


async def test_very_short_repeated_calls_to_tracking_numbers_are_flagged(
    make_client: AppFactory, any_db: Database, tmp_path: Path, auth: dict[str, str]
) -> None:
    client = await serve(make_client, any_db, tmp_path, SHORT)
    now = history_time(datetime.now(UTC))
    calls = [
        ("79160000001", SITE_POOL[0], "4"),
        ("79160000001", SITE_POOL[1], "3"),
        ("79160000001", SITE_POOL[0], "2"),  # the third short call within a day: flagged
        ("79160000001", SITE_POOL[0], "45"),  # a real conversation is never flagged
        ("79160000002", SITE_POOL[2], "2"),  # one short call is just a short call
        ("79160000003", DEFAULT, "1"),  # the site's own number is not call tracking
        ("79160000003", DEFAULT, "1"),
        ("79160000003", DEFAULT, "1"),
    ]
    for index, (caller, dialled, duration) in enumerate(calls):
        [history] = load("inbound_missed")[2:]
        history.update(
            phone=caller, diversion=dialled, duration=duration, callid=f"s-{index}", start=now
        )
        await replay(client, [history, history])  # a repeated push changes nothing
    flags = []
    for caller in ("79160000001", "79160000002", "79160000003"):
        listed = await (await client.get(f"/api/v1/calls?phone={caller}", headers=auth)).json()
        for summary in reversed(listed["calls"]):  # oldest first
            path = f"/api/v1/calls/{summary['id']}"
            detail = await (await client.get(path, headers=auth)).json()
            flags.append(detail["flags"]["suspected_fraud"])
    assert flags == [False, False, True, False, False, None, None, None]


async def test_a_refused_address_gives_its_numbers_back_and_takes_none(
    make_client: AppFactory, any_db: Database, tmp_path: Path
) -> None:
    client = await serve(
        make_client,
        any_db,
        tmp_path,
        LIMITS.replace("leases_per_address = 0", "leases_per_address = 2"),
    )
    script = [(await visit(client, headers=from_("95.31.18.7")))[1] for _ in range(3)]
    assert [answer["number"] for answer in script] == [*SITE_POOL[:2], DEFAULT]
    assert (await visit(client, headers=from_("95.31.18.7")))[0] == 429
    # Both numbers went back to the pool at once: the unused one first, then the released ones.
    others = [(await visit(client, headers=from_(f"178.176.{n}.2")))[1] for n in range(3)]
    assert [answer["number"] for answer in others] == [SITE_POOL[2], *SITE_POOL[:2]]


@pytest.mark.parametrize(
    ("ip", "holder"),
    [
        ("95.31.18.7", ("95.31.18.7", "95.31.18.0/24")),
        ("2a02:6b8:b010:1::5", ("2a02:6b8:b010:1::5", "2a02:6b8:b010::/48")),
        ("::ffff:95.31.18.7", ("95.31.18.7", "95.31.18.0/24")),
        ("10.1.2.3", None),
        ("127.0.0.1", None),
        ("192.0.2.10", None),
        ("not an address", None),
        (None, None),
    ],
)
def test_limited_addresses_and_their_networks(
    ip: str | None, holder: tuple[str, str] | None
) -> None:
    found = holder_of(ip)
    assert (None if found is None else (found.address, found.network)) == holder
