"""The pool and its history at chosen moments (the domain with explicit clocks, both databases):
leases, the least-recently-released queue, grace, returning visitors, attribution by time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.models import Call, CallAttribution
from telephony.clients import get_variables, match_or_create_client
from telephony.tracking import (
    PageView,
    TrackingConfig,
    VisitorIds,
    attribute_call,
    ping,
    record_page_view,
    sync_numbers,
)
from tests.tracking_support import CHROME, DEFAULT, DIRECT, DIRECT_STATIC, SITE, SITE_POOL, config

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AD = f"{SITE}/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&yclid=777"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def view(url: str = f"{SITE}/", visit_id: str | None = None, **fields: str) -> PageView:
    return PageView(url=url, visit_id=visit_id, user_agent=CHROME, ip="192.0.2.10", **fields)


@pytest.fixture
async def tracked(any_db: Database) -> tuple[Database, TrackingConfig]:
    cfg = config()
    async with any_db.session() as session:
        await sync_numbers(session, cfg)
    return any_db, cfg


async def call_to(
    db: Database, cfg: TrackingConfig, number: str, when: datetime, phone: str = "79161234567"
) -> CallAttribution | None:
    """A stored inbound call from `phone` that came in on `number` at `when`, attributed."""
    async with db.session() as session:
        client, _ = await match_or_create_client(session, phone)
        call = Call(
            provider="megafon",
            callid=f"c-{number}-{when.timestamp()}",
            direction="in",
            phone=phone,
            client_id=client.id,
            diversion=number,
            started_at=when,
        )
        session.add(call)
        await session.flush()
        return await attribute_call(session, cfg, call, number, when)


async def test_source_rules_pick_the_pool_and_lru_hands_out_numbers(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    a = await record_page_view(db, cfg, view(AD), at(0))
    b = await record_page_view(db, cfg, view(AD), at(1))
    c = await record_page_view(db, cfg, view(AD), at(2))
    assert [a.number, b.number] == DIRECT
    assert c.number == DIRECT_STATIC and c.lease is None and c.visit_id is not None  # exhausted
    organic = await record_page_view(
        db, cfg, view(f"{SITE}/", referrer="https://yandex.ru/"), at(3)
    )
    assert organic.number == SITE_POOL[0]
    assert a.expires_at == at(90)


async def test_a_released_number_goes_to_the_end_of_the_queue(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    first = await record_page_view(db, cfg, view(), at(0))
    second = await record_page_view(db, cfg, view(), at(1))
    assert [first.number, second.number] == SITE_POOL[:2]
    # Both leases ended (no pings for 90 s). The never-used number goes first, then the one
    # released longest ago.
    later = [await record_page_view(db, cfg, view(), at(200 + i)) for i in range(3)]
    assert [shown.number for shown in later] == [SITE_POOL[2], SITE_POOL[0], SITE_POOL[1]]
    full = await record_page_view(db, cfg, view(), at(210))
    assert full.number == DEFAULT and full.lease is None  # no static number for this pool


async def test_the_same_visitor_keeps_the_number_while_the_lease_lives(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    first = await record_page_view(db, cfg, view(AD), at(0))
    assert first.visit_id is not None
    ids = VisitorIds(metrika_client_id="1700000000111", roistat_visit="42")
    pinged = await ping(db, cfg, first.visit_id, ids, at(60))
    assert pinged.number == first.number and pinged.expires_at == at(150)
    # A later page of the same visit (no tags in its URL): same visit, same number.
    again = await record_page_view(db, cfg, view(f"{SITE}/prices", first.visit_id), at(120))
    assert (again.visit_id, again.number) == (first.visit_id, first.number)
    # Someone else arriving now does not get it.
    other = await record_page_view(db, cfg, view(AD), at(121))
    assert other.number != first.number


async def test_a_hidden_tab_coming_back_gets_its_number_again_if_still_free(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    first = await record_page_view(db, cfg, view(AD), at(0))
    assert first.visit_id is not None
    back = await ping(db, cfg, first.visit_id, VisitorIds(), at(600))  # lease ended at 90
    assert back.number == first.number and back.expires_at == at(690)


async def test_max_length_stops_extending_a_lease(tracked: tuple[Database, TrackingConfig]) -> None:
    db, cfg = tracked
    first = await record_page_view(db, cfg, view(AD), at(0))
    assert first.visit_id is not None
    for second in range(60, 3600, 60):
        await ping(db, cfg, first.visit_id, VisitorIds(), at(second))
    late = await ping(db, cfg, first.visit_id, VisitorIds(), at(3601))
    assert late.number == first.number and late.lease is None  # still shown, no longer held
    # The number is free for others: after the never-used one, it goes out next.
    others = [await record_page_view(db, cfg, view(AD), at(3602 + i)) for i in range(2)]
    assert [shown.number for shown in others] == [DIRECT[1], DIRECT[0]]


async def test_new_campaign_tags_start_a_new_visit_with_the_same_number(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    first = await record_page_view(db, cfg, view(AD), at(0))
    again = await record_page_view(
        db,
        cfg,
        view(f"{SITE}/?utm_source=yandex&utm_medium=cpc&utm_campaign=summer", first.visit_id),
        at(30),
    )
    assert again.visit_id != first.visit_id and again.number == first.number


async def test_a_call_belongs_to_the_lease_that_held_the_number_then(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    a = await record_page_view(db, cfg, view(AD, metrika_client_id="111"), at(0))
    b = await record_page_view(db, cfg, view(AD), at(1))
    n1 = a.number
    # During A's lease, and after it ended (within the grace, nobody else took the number).
    during = await call_to(db, cfg, n1, at(60))
    after = await call_to(db, cfg, n1, at(600))
    assert during is not None and after is not None
    assert during.visit_id == after.visit_id == a.visit_id
    assert during.channel_level is False
    # Page open and nobody else near the number: exact; after the page closed: probable.
    assert (during.confidence, during.matched_by) == ("exact", "lease")
    assert (after.confidence, after.matched_by) == ("probable", "grace")
    assert (during.utm_source, during.utm_campaign, during.yclid) == ("yandex", "spring", "777")
    assert during.metrika_client_id == "111" and during.source == "Яндекс.Директ"
    # C takes n1 once both earlier leases ended (released longest ago): calls go to C now.
    c = await record_page_view(db, cfg, view(AD), at(700))
    assert c.number == n1
    to_c = await call_to(db, cfg, n1, at(710))
    assert to_c is not None and to_c.visit_id == c.visit_id
    # C's page is open: exact; A's grace still runs, so both are listed as candidates.
    assert (to_c.confidence, to_c.matched_by) == ("exact", "lease")
    assert json.loads(to_c.candidate_visits or "[]") == [c.visit_id, a.visit_id]
    # B's number after B's grace ran out, a new caller: only the pool's source is known.
    late = await call_to(db, cfg, b.number, at(1 + 90 + 1800 + 5), phone="79169990000")
    assert late is not None and late.channel_level is True and late.visit_id is None
    assert late.source == "Яндекс.Директ"
    assert (late.confidence, late.matched_by) == ("channel", "pool")
    # The caller of the earlier calls, on the same lapsed number: their last visit (C).
    returning = await call_to(db, cfg, b.number, at(1 + 90 + 1800 + 9))
    assert returning is not None and returning.visit_id == c.visit_id
    assert (returning.confidence, returning.matched_by) == ("probable", "returning")
    assert returning.channel_level is False and returning.utm_campaign == "spring"


async def test_static_default_and_foreign_numbers(tracked: tuple[Database, TrackingConfig]) -> None:
    db, cfg = tracked
    static = await call_to(db, cfg, DIRECT_STATIC, at(0))
    assert static is not None and static.channel_level and static.source == "Яндекс.Директ"
    assert await call_to(db, cfg, DEFAULT, at(0)) is None
    assert await call_to(db, cfg, "74997776655", at(0)) is None
    assert await call_to(db, cfg, "not a phone", at(0)) is None


async def test_a_call_is_attributed_once_and_the_client_gets_the_variables(
    tracked: tuple[Database, TrackingConfig],
) -> None:
    db, cfg = tracked
    a = await record_page_view(db, cfg, view(AD, roistat_visit="5501"), at(0))
    async with db.session() as session:
        client, _ = await match_or_create_client(session, "79161234567")
        call = Call(
            provider="megafon",
            callid="once",
            direction="in",
            phone="79161234567",
            client_id=client.id,
            diversion=a.number,
            started_at=at(10),
        )
        session.add(call)
        await session.flush()
        assert await attribute_call(session, cfg, call, a.number, at(10)) is not None
        assert await attribute_call(session, cfg, call, a.number, at(10)) is None
        assert client.id is not None
        variables = await get_variables(session, client.id)
    assert variables["utm_source"] == "yandex"
    assert variables["utm_campaign"] == "spring"
    assert variables["roistat_visit"] == "5501"
    assert variables["tracking_source"] == "Яндекс.Директ"
    assert variables["tracking_visit_id"] == a.visit_id
    assert variables["landing_url"] == AD


async def test_removed_numbers_stop_being_leased(tracked: tuple[Database, TrackingConfig]) -> None:
    db, cfg = tracked
    smaller = cfg.model_copy(
        update={"pools": [cfg.pools[0], cfg.pools[1].model_copy(update={"numbers": SITE_POOL[2:]})]}
    )
    async with db.session() as session:
        await sync_numbers(session, smaller)
    first = await record_page_view(db, smaller, view(), at(0))
    second = await record_page_view(db, smaller, view(), at(1))
    assert first.number == SITE_POOL[2] and second.number == DEFAULT
