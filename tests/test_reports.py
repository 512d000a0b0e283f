"""Reports over HTTP on a small hand-made seed (tests/reports_seed.py): every figure below is
worked out by hand from that seed. Both databases."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text

from bot.commands.demo_data import DemoShape, fill
from bot.reports import ROLLUP
from bot.roles import Role
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Call
from storage.report_queries import rollup_done_until
from storage.tracking_models import TrackingLease, TrackingVisit
from telephony.infra.clock import FakeClock
from telephony.reports import rollup as rollup_
from telephony.reports.rollup import PoolHourRollup
from tests.conftest import API_TOKEN, AppClient, AppFactory
from tests.reports_seed import ANNA, BORIS, DIRECT, FROM, N2, SEARCH, TO, call_row, seed, utc
from tests.test_megafon_call import run_cli

PERIOD = {"from": FROM, "to": TO}


@pytest.fixture
async def seeded(make_client: AppFactory, any_db: Database) -> AppClient:
    await seed(any_db)
    return await make_client(any_db)


async def report(client: AppClient, auth: dict[str, str], name: str, **query: str) -> Any:
    response = await client.get(f"/api/v1/reports/{name}", params={**PERIOD, **query},
                                headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


def figures(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (row["total"], row["unique"], row["first_time"], row["answered"], row["missed"])


async def test_calls_by_day_source_manager_and_filters(
    seeded: AppClient, auth: dict[str, str]
) -> None:
    by_source = await report(seeded, auth, "calls", by="source")
    # Seven inbound calls in the two days (the 4 November one is outside), five callers.
    assert figures(by_source["totals"]) == (7, 5, 5, 3, 4)
    assert [(r["label"], *figures(r)) for r in by_source["series"]] == [
        ("02.11", 3, 3, 3, 1, 2),
        ("03.11", 4, 3, 2, 2, 2),
    ]
    assert {r["key"]: figures(r) for r in by_source["rows"]} == {
        DIRECT: (3, 2, 2, 2, 1),
        SEARCH: (1, 1, 1, 0, 1),
        "": (3, 3, 2, 1, 2),
    }
    assert by_source["confidence"] == {"exact": 2, "probable": 1, "channel": 1, "none": 3}

    by_manager = await report(seeded, auth, "calls", by="manager")
    assert {r["label"]: r["answered"] for r in by_manager["rows"]} == {
        "Анна": 2, "Борис": 1, "без менеджера": 0,
    }
    by_campaign = await report(seeded, auth, "calls", by="campaign")
    assert {r["key"]: r["total"] for r in by_campaign["rows"]} == {"spring": 2, "": 5}
    by_landing = await report(seeded, auth, "calls", by="landing")  # queries (UTM) cut off
    assert {r["key"]: r["total"] for r in by_landing["rows"]} == {
        "https://shop.example/sale": 3, "": 4,
    }

    novofon = await report(seeded, auth, "calls", by="source", provider="novofon")
    assert figures(novofon["totals"]) == (1, 1, 1, 0, 1)
    direct_pool = await report(seeded, auth, "calls", by="pool", pool="direct")
    assert figures(direct_pool["totals"]) == (2, 1, 1, 2, 0)
    anna = await report(seeded, auth, "calls", by="source", manager=ANNA)
    assert figures(anna["totals"]) == (2, 1, 1, 2, 0)

    one_day = await report(seeded, auth, "calls", by="hour", **{"from": TO, "to": TO})
    assert len(one_day["series"]) == 24  # a single day is drawn by hour (Moscow time)
    two_days = await report(seeded, auth, "calls", by="hour")
    assert [r["label"] for r in two_days["rows"]][:2] == ["02.11 10:00", "02.11 20:00"]
    assert {r["label"]: r["total"] for r in one_day["series"] if r["total"]} == {
        "11:00": 2, "12:00": 1, "13:00": 1,
    }


async def test_missed_call_recovery_and_response_in_working_hours(
    seeded: AppClient, auth: dict[str, str]
) -> None:
    missed = await report(seeded, auth, "missed")
    totals = {k: v for k, v in missed["totals"].items() if k != "key"}
    # Call 2: Boris called back in 10 min; call 4 (20:00): Anna at 9:30 next morning;
    # call 6: the client called again first; call 8: nobody yet.
    assert totals == {"missed": 4, "within_15m": 1, "within_24h": 1, "later": 0,
                      "called_again": 1, "never": 1}
    assert [(d["key"], d["missed"]) for d in missed["days"]] == [(FROM, 2), (TO, 2)]
    managers = {m["manager"]: m for m in missed["managers"]}
    # 20:00 → 09:30 is 30 minutes of working time (default Mon–Fri 09–18).
    assert (managers[ANNA]["callbacks"], managers[ANNA]["median_minutes"]) == (1, 30.0)
    assert (managers[BORIS]["callbacks"], managers[BORIS]["median_minutes"]) == (1, 10.0)
    assert (managers[ANNA]["answered"], managers[BORIS]["answered"]) == (2, 1)
    assert managers[""]["missed"] == 4 and managers[""]["name"] == "без менеджера"


async def test_only_the_first_call_after_a_missed_one_decides_what_happened(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    """The client calling again before a call back is "called again" even when the call back
    comes later; a call back on the same second as the client's call counts as the call back;
    internal legs and calls without a direction are not calls between the client and us."""
    await seed(any_db)
    p7, p8 = "79000000071", "79000000082"
    rows = [
        call_row(20, p7, "in", utc(3, 11), answered=False, first=True),
        call_row(21, p7, "in", utc(3, 11, 5), answered=True, manager=ANNA, first=False),
        call_row(22, p7, "out", utc(3, 11, 30), answered=True, manager=BORIS),
        call_row(23, p8, "in", utc(3, 12), answered=False, first=True),
        {**call_row(24, p8, "out", utc(3, 12, 1), answered=True, manager=ANNA), "internal": True},
        {**call_row(25, p8, "in", utc(3, 12, 2), answered=True), "direction": None},
        call_row(26, p8, "in", utc(3, 12, 5), answered=False, first=False),
        call_row(27, p8, "out", utc(3, 12, 5), answered=True, manager=BORIS),
    ]
    async with any_db.engine.begin() as connection:
        for row in rows:
            await connection.execute(insert(Call.__table__).values(**row))  # type: ignore[attr-defined]
    client = await make_client(any_db)
    missed = await report(client, auth, "missed")
    totals = {k: v for k, v in missed["totals"].items() if k != "key"}
    # Before: 4 missed (15 min, 24 h, again, never). Call 20: again first; call 23: Boris on
    # the same second as the client's call 26, which is missed too, with nothing after it.
    assert totals == {"missed": 7, "within_15m": 2, "within_24h": 1, "later": 0,
                      "called_again": 2, "never": 2}
    boris = {m["manager"]: m for m in missed["managers"]}[BORIS]
    assert (boris["callbacks"], boris["median_minutes"], boris["p90_minutes"]) == (2, 5.0, 10.0)


async def test_leads_and_their_deliveries(seeded: AppClient, auth: dict[str, str]) -> None:
    leads = await report(seeded, auth, "leads")
    assert leads["created"] == {"call": 1, "form": 1, "total": 2}
    assert [(d["day"], d["call"], d["form"]) for d in leads["days"]] == [(FROM, 1, 0), (TO, 0, 1)]
    sinks = {s["sink"]: (s["delivered"], s["pending"], s["retrying"], s["dead"])
             for s in leads["sinks"]}
    assert sinks == {"metrika": (0, 0, 0, 1), "roistat": (1, 1, 0, 0),
                     "roistat_message": (0, 0, 1, 0)}
    assert [(d["id"], d["sink"], d["last_error"]) for d in leads["dead"]] == [
        (2, "metrika", "HTTP 401: invalid token")
    ]


async def test_pool_utilisation_overload_and_recommendation(
    seeded: AppClient, auth: dict[str, str]
) -> None:
    tracking = await report(seeded, auth, "tracking")
    pools = {p["pool"]: p for p in tracking["pools"]}
    direct, search = pools["direct"], pools["search"]
    # Two leases overlap 10:10–10:20 on both numbers: 100%; a third visitor got the static one.
    assert (direct["numbers"], direct["peak_live"], direct["peak_utilisation"]) == (2, 2, 1.0)
    assert (direct["hours_over_75"], direct["visits"], direct["overloaded_visits"]) == (1, 3, 1)
    assert direct["recommendation"] == {
        "numbers": 3, "visits_per_day": 2, "command": "trubka pool plan --visits-per-day 2"
    }
    assert (search["peak_live"], search["peak_utilisation"], search["recommendation"]) == (
        1, 0.5, None,
    )
    hours = {(h["pool"], h["hour"]): h for h in tracking["hours"]}
    assert len(hours) == 2 * 48
    assert hours[("direct", "2026-11-02 10")]["overloaded_visits"] == 1
    assert hours[("search", "2026-11-03 11")]["utilisation"] == 0.5
    assert tracking["confidence"]["none"] == 3


async def test_call_detail_shows_confidence_and_candidates(
    seeded: AppClient, auth: dict[str, str]
) -> None:
    shared = await (await seeded.get("/api/v1/calls/6", headers=auth)).json()
    assert shared["confidence"] == "probable"
    assert shared["attribution"]["matched_by"] == "shared"
    assert shared["attribution"]["candidate_visits"] == ["vc", "vx"]
    plain = await (await seeded.get("/api/v1/calls/4", headers=auth)).json()
    assert (plain["confidence"], plain["attribution"]) == ("none", {})


async def test_report_api_refuses_bad_input_and_strangers(seeded: AppClient) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert (await seeded.get("/api/v1/reports/calls")).status == 401
    for query, field in (
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-03", "to": "2026-11-01"}, "to"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
        ({"by": "colour"}, "by"),
        ({"provider": "beeline"}, "provider"),
    ):
        response = await seeded.get("/api/v1/reports/calls", params=query, headers=auth)
        assert response.status == 400
        assert (await response.json())["field"] == field


async def login(client: AppClient, token: str = API_TOKEN, target: str = "/reports/calls") -> Any:
    return await client.post(
        "/reports/login", data={"token": token, "next": target}, allow_redirects=False
    )


async def test_pages_need_the_login_and_keep_a_signed_cookie(seeded: AppClient) -> None:
    stranger = await seeded.get("/reports/missed?from=2026-11-02", allow_redirects=False)
    assert stranger.status == 303
    assert stranger.headers["Location"] == "/reports/login?next=/reports/missed?from%3D2026-11-02"
    wrong = await login(seeded, "guess")
    assert wrong.status == 401 and "Неверный токен" in await wrong.text()
    assert "trubka_reports" not in wrong.cookies
    # Never sent to another site after the login.
    elsewhere = await login(seeded, target="https://evil.example/")
    assert elsewhere.headers["Location"] == "/reports/calls"
    cookie = elsewhere.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/reports" in cookie
    page = await seeded.get("/reports/calls", params={**PERIOD, "by": "manager"})
    html = await page.text()
    assert page.status == 200 and "<svg" in html and "Анна" in html
    # A forged cookie is not a session.
    seeded.session.cookie_jar.clear()
    forged = {"Cookie": "trubka_reports=99999999999.00"}
    assert (await seeded.get("/reports/calls", headers=forged, allow_redirects=False)).status == 303


async def test_guessing_the_token_is_slowed_down(seeded: AppClient) -> None:
    for _ in range(10):
        assert "Неверный токен" in await (await login(seeded, "guess")).text()
    refused = await login(seeded)  # even the right token, once the tries are spent
    assert refused.status == 401 and "Слишком много попыток" in await refused.text()


async def test_every_table_exports_csv(seeded: AppClient) -> None:
    await login(seeded)
    response = await seeded.get(
        "/reports/calls.csv", params={**PERIOD, "by": "source", "table": "rows"}
    )
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = (await response.text()).lstrip("\ufeff").splitlines()
    assert lines == [
        "key,label,total,unique,first_time,answered,missed",
        "Яндекс.Директ,Яндекс.Директ,3,2,2,2,1",
        ",без источника,3,3,2,1,2",
        "Органический поиск,Органический поиск,1,1,1,0,1",
    ]
    for page, tables in (
        ("calls", ("rows", "series")),
        ("missed", ("days", "managers")),
        ("leads", ("days", "sinks", "dead")),
        ("tracking", ("pools", "hours")),
    ):
        html = await (await seeded.get(f"/reports/{page}", params=PERIOD)).text()
        for table in tables:
            link = re.search(rf'href="(/reports/{page}\.csv\?[^"]*table={table})"', html)
            assert link is not None, (page, table)
            csv = await seeded.get(link.group(1).replace("&amp;", "&"))
            assert csv.status == 200 and len((await csv.text()).splitlines()) >= 2
    bad = await seeded.get("/reports/calls.csv", params={"table": "secrets"})
    assert bad.status == 400


async def test_metrics_show_pools_queue_and_latency_by_route(
    seeded: AppClient, auth: dict[str, str]
) -> None:
    await seeded.get("/api/v1/calls/6", headers=auth)
    await seeded.get("/api/v1/calls/7", headers=auth)
    text = await (await seeded.get("/metrics")).text()
    assert 'trubka_tracking_pool_numbers{pool="direct"} 2.0' in text
    assert 'trubka_tracking_pool_live_leases{pool="search"} 0.0' in text
    assert 'trubka_queue_backlog{queue="telegram"} 1.0' in text  # the Telegram queue's depth
    assert (
        'trubka_http_request_duration_seconds_count{method="GET",'
        'route="/api/v1/calls/{call_id}",status="200"} 2.0'
    ) in text
    assert "/api/v1/calls/6" not in text


async def test_demo_fills_a_fresh_database_once(tmp_path: Path) -> None:
    env = {"TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    code, out, _ = await run_cli(env, "demo", "--days", "2")
    assert code == 0
    assert "8 managers" in out and "/reports" in out
    with sqlite3.connect(tmp_path / "demo.db") as connection:  # its closed hours rolled up
        (hours,) = connection.execute("SELECT COUNT(*) FROM report_pool_hours").fetchone()
        (rollups,) = connection.execute("SELECT COUNT(*) FROM report_rollups").fetchone()
    assert hours > 20 and rollups == 1
    code, out, _ = await run_cli(env, "demo")
    assert code == 1 and "fresh database only" in out


async def test_demo_data_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    shape = DemoShape(days=2, visits_per_day=300, seed=5)
    counts = []
    for name in ("a.db", "b.db"):
        database = Database(f"sqlite+aiosqlite:///{tmp_path / name}")
        await upgrade(database)
        counts.append(await fill(database, ZoneInfo("Europe/Moscow"), shape, now=now))
        async with database.engine.connect() as connection:
            calls = (await connection.execute(text(
                "SELECT phone, direction, status, started_at FROM calls ORDER BY id"
            ))).all()
        counts.append({"calls": hash(tuple(calls))})
        await database.dispose()
    assert counts[0] == counts[2] and counts[1] == counts[3]
    assert counts[0]["calls"] > 20 and counts[0]["tracking_leases"] > 100


async def test_demo_then_new_rows_on_both_databases(any_db: Database) -> None:
    """Demo rows carry their ids: new rows after them must not collide (PostgreSQL sequences)."""
    counts = await fill(any_db, ZoneInfo("Europe/Moscow"), DemoShape(days=1, visits_per_day=100))
    async with any_db.session() as session:
        call = Call(provider="megafon", callid="after-demo", direction="in")
        session.add(call)
        await session.flush()
        assert call.id == counts["calls"] + 1


# --- the hourly rollup of the tracking pools -------------------------------------------------

TRACKING_QUERIES: tuple[dict[str, str], ...] = ({}, {"pool": "direct"}, {"from": TO, "to": TO})


async def tracking_reports(client: AppClient, auth: dict[str, str]) -> list[Any]:
    return [await report(client, auth, "tracking", **query) for query in TRACKING_QUERIES]


async def pool_hour_rows(db: Database) -> list[Any]:
    async with db.engine.connect() as connection:
        result = await connection.execute(text(
            "SELECT pool, hour, peak_live, visits, overloaded_visits FROM report_pool_hours "
            "ORDER BY pool, hour"
        ))
        return [tuple(row) for row in result.all()]


async def seed_across_the_cut(db: Database) -> None:
    """The seed, plus a lease live across 3 Nov 07:00 UTC (where the first rollup below stops)
    and a visit shown the static number just before it."""
    await seed(db)
    async with db.engine.begin() as connection:
        await connection.execute(insert(TrackingVisit.__table__).values([  # type: ignore[attr-defined]
            {"id": "vd", "pool": "direct", "source": DIRECT, "created_at": utc(3, 6, 50),
             "last_seen_at": utc(3, 7, 25)},
            {"id": "ve", "pool": "direct", "source": DIRECT, "created_at": utc(3, 6, 58),
             "last_seen_at": utc(3, 6, 58)},
        ]))
        await connection.execute(insert(TrackingLease.__table__).values(  # type: ignore[attr-defined]
            id=4, number=N2, pool="direct", visit_id="vd", started_at=utc(3, 6, 50),
            last_ping_at=utc(3, 7, 25), ends_at=utc(3, 7, 25), counts_until=utc(3, 7, 55),
        ))


async def test_rolled_up_hours_give_the_live_figures_and_rolling_again_changes_nothing(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    await seed_across_the_cut(any_db)
    client = await make_client(any_db, role=Role.WEB)  # no worker: the test rolls up itself
    live = await tracking_reports(client, auth)
    direct = {p["pool"]: p for p in live[0]["pools"]}["direct"]
    assert (direct["peak_live"], direct["visits"], direct["overloaded_visits"]) == (2, 5, 2)
    # Moscow time: the lease from 09:50 to 10:25 is live in both hours.
    hours = {(h["pool"], h["hour"]): h["peak_live"] for h in live[0]["hours"]}
    assert (hours["direct", "2026-11-03 09"], hours["direct", "2026-11-03 10"]) == (1, 1)

    # Closed up to 3 Nov 07:00 UTC: those hours from rows, the rest from leases and visits.
    first = PoolHourRollup(any_db, now=lambda: utc(3, 8, 45))
    assert await first.catch_up() == 24  # from the first visit's hour, 2 Nov 07:00
    assert await tracking_reports(client, auth) == live
    # Every hour of the period closed (in batches of a day here).
    rollup = PoolHourRollup(any_db, now=lambda: utc(6, 0), batch=rollup_.HOUR * 24)
    assert await rollup.catch_up() == 64  # up to 5 Nov 23:00, an hour before "now"
    assert await tracking_reports(client, auth) == live
    rows = await pool_hour_rows(any_db)
    assert [row[0] for row in rows] == ["direct"] * 3 + ["search"], rows

    assert await rollup.roll_once() == 0  # up to date: nothing to do
    async with any_db.engine.begin() as connection:  # forget the watermark: all again
        await connection.execute(text("DELETE FROM report_rollups"))
    assert await rollup.catch_up() == 88
    assert await pool_hour_rows(any_db) == rows  # the same rows (upserted), none doubled

    # The report reads the rows: with the leases gone (history pruned), the figures stay.
    async with any_db.engine.begin() as connection:
        await connection.execute(text("DELETE FROM tracking_leases"))
    assert await tracking_reports(client, auth) == live


async def test_local_hours_off_whole_utc_hours_are_all_computed(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    await seed(any_db)
    await PoolHourRollup(any_db, now=lambda: utc(6, 0)).catch_up()
    async with any_db.engine.begin() as connection:
        await connection.execute(text("DELETE FROM tracking_leases"))
    moscow = await make_client(any_db, role=Role.WEB)
    india = await make_client(any_db, role=Role.WEB, timezone="Asia/Kolkata")  # UTC+05:30

    async def direct(client: AppClient) -> Any:
        tracking = await report(client, auth, "tracking")
        return {p["pool"]: p for p in tracking["pools"]}["direct"]

    assert (await direct(moscow))["peak_live"] == 2  # closed hours: the rollup's rows
    assert (await direct(india))["peak_live"] == 0  # every hour from the (pruned) leases


async def test_the_worker_rolls_up_closed_hours(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    await seed(any_db)
    clock = FakeClock(utc(20, 12, 30))
    client = await make_client(any_db, clock=clock)  # role "all": the background loops run
    rollup = client.app[ROLLUP]
    assert rollup.closed_until() == utc(20, 11)
    for _ in range(200):
        async with any_db.read() as session:
            done = await rollup_done_until(session, rollup_.ROLLUP)
        if done == utc(20, 11):
            break
        await asyncio.sleep(0.05)
    assert done == utc(20, 11)
    assert len(await pool_hour_rows(any_db)) == 2  # direct 2 Nov 07:00 UTC, search 3 Nov 08:00
    tracking = await report(client, auth, "tracking")
    assert {p["pool"]: p["peak_live"] for p in tracking["pools"]} == {"direct": 2, "search": 1}


def pool_totals(tracking: Any) -> dict[str, tuple[Any, ...]]:
    keys = ("numbers", "peak_live", "peak_utilisation", "hours_over_75", "visits",
            "overloaded_visits")
    return {p["pool"]: tuple(p[key] for key in keys) for p in tracking["pools"]}


async def test_a_long_period_is_shown_day_by_day_with_the_same_figures(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    """Past 31 days a pool's series is one point per day (its busiest hour); the pools' figures
    are those of the hours, whether the hours are computed or read from the rollup."""
    await seed_across_the_cut(any_db)
    client = await make_client(any_db, role=Role.WEB)
    month = {"from": "2026-11-01", "to": "2026-11-30"}
    long = {"from": "2026-10-15", "to": "2026-11-30"}  # 47 days

    async def both() -> tuple[Any, Any]:
        return (await report(client, auth, "tracking", **month),
                await report(client, auth, "tracking", **long))

    hourly, daily = await both()
    assert (hourly["resolution"], daily["resolution"]) == ("hour", "day")
    assert pool_totals(daily) == pool_totals(hourly)
    assert pool_totals(daily)["direct"] == (2, 2, 1.0, 1, 5, 2)
    days = {(h["pool"], h["hour"]): h for h in daily["hours"]}
    assert len(days) == 2 * 47
    for (pool, day), point in days.items():
        hours = [h for h in hourly["hours"] if h["pool"] == pool and h["hour"][:10] == day]
        assert point["peak_live"] == max((h["peak_live"] for h in hours), default=0)
        assert point["overloaded_visits"] == sum(h["overloaded_visits"] for h in hours)
    assert days["direct", "2026-11-02"]["utilisation"] == 1.0
    assert days["direct", "2026-11-03"]["overloaded_visits"] == 1
    assert days["search", "2026-10-20"]["peak_live"] == 0

    # Part of the period rolled up, then all of it: the same answers (days summed in SQL).
    await PoolHourRollup(any_db, now=lambda: utc(3, 8, 45)).catch_up()
    assert await both() == (hourly, daily)
    await PoolHourRollup(any_db, now=lambda: utc(6, 0), batch=rollup_.HOUR * 24).catch_up()
    async with any_db.engine.begin() as connection:
        await connection.execute(text("DELETE FROM tracking_leases"))
    assert await both() == (hourly, daily)
    direct_only = await report(client, auth, "tracking", pool="direct", **long)
    assert pool_totals(direct_only) == {"direct": pool_totals(daily)["direct"]}
    # The page says so and labels every day.
    await login(client)
    html = await (await client.get("/reports/tracking", params=long)).text()
    assert "Загрузка по дням" in html and "самый загруженный час дня" in html
    ticks = re.findall(r'class="xtick">([^<]*)</text>', html)
    assert ticks[0] == "15.10" and all(re.fullmatch(r"\d\d\.\d\d", tick) for tick in ticks)
