"""Page views and pings: store the visit, show it a number, keep the lease alive."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.tracking_models import TrackingLease, TrackingVisit
from storage.tracking_queries import newest_lease
from telephony.tracking import pool as pool_
from telephony.tracking.config import TrackingConfig
from telephony.tracking.guard import Holder, holder_of
from telephony.tracking.visitors import CAMPAIGN_TAGS, PageView, device_type, is_excluded


@dataclass(frozen=True)
class Shown:
    """The number a page shows. No lease: the default or a static number (robots, excluded
    addresses, an exhausted pool); no visit id: nothing was stored (robots, excluded)."""

    visit_id: str | None
    number: str
    lease: TrackingLease | None = None

    @property
    def expires_at(self) -> datetime | None:
        return self.lease.ends_at if self.lease is not None else None


@dataclass(frozen=True)
class VisitorIds:
    """Analytics ids the page may learn after the first view (Metrika sets `_ym_uid` late)."""

    metrika_client_id: str | None = None
    roistat_visit: str | None = None
    ga_client_id: str | None = None


class UnknownVisit(LookupError):
    pass


async def record_page_view(
    db: Database, config: TrackingConfig, view: PageView, now: datetime
) -> Shown:
    assert config.default_number is not None
    if is_excluded(config, view.ip, view.user_agent):
        return Shown(None, config.default_number)
    async with db.session() as session:
        visit = await _lock_visit(session, view.visit_id) if view.visit_id else None
        previous: TrackingLease | None = None
        if visit is not None and not _continues(visit, view, config, now):
            # A new ad click or a visitor back after a long pause: a new visit. The old lease
            # ends now; its number is offered back to the same person first.
            previous = await newest_lease(session, visit.id)
            if previous is not None:
                await pool_.end(session, previous, now)
            visit = None
        if visit is None:
            visit = _new_visit(config, view, now)
            session.add(visit)
            await session.flush()
        else:
            visit.last_url = view.url
            visit.last_seen_at = now
            _learn_ids(visit, _ids_of(view))
            session.add(visit)
        return await _show(
            session, config, visit, now, page_view=True, previous=previous, may_lease=view.may_lease
        )


async def ping(
    db: Database,
    config: TrackingConfig,
    visit_id: str,
    ids: VisitorIds,
    now: datetime,
    *,
    may_lease: bool = True,
) -> Shown:
    """The page is still open and visible. Raises UnknownVisit."""
    async with db.session() as session:
        visit = await _lock_visit(session, visit_id)
        if visit is None:
            raise UnknownVisit(visit_id)
        visit.last_seen_at = now
        _learn_ids(visit, ids)
        session.add(visit)
        return await _show(session, config, visit, now, page_view=False, may_lease=may_lease)


async def penalize(db: Database, holder: Holder, now: datetime, *, whole_network: bool) -> int:
    """An address (or network) went over its request budget: its live leases end now."""
    async with db.session() as session:
        return await pool_.release_holder(session, holder, now, whole_network=whole_network)


async def _lock_visit(session: AsyncSession, visit_id: str) -> TrackingVisit | None:
    return await session.get(TrackingVisit, visit_id, with_for_update=True, populate_existing=True)


def _continues(visit: TrackingVisit, view: PageView, config: TrackingConfig, now: datetime) -> bool:
    if now - visit.last_seen_at > timedelta(seconds=config.lease.visit_timeout):
        return False
    tags = view.tags()
    return all(not tags[name] or tags[name] == getattr(visit, name) for name in CAMPAIGN_TAGS)


def _ids_of(view: PageView) -> VisitorIds:
    return VisitorIds(view.metrika_client_id, view.roistat_visit, view.ga_client_id)


def _learn_ids(visit: TrackingVisit, ids: VisitorIds) -> None:
    visit.metrika_client_id = ids.metrika_client_id or visit.metrika_client_id
    visit.roistat_visit = ids.roistat_visit or visit.roistat_visit
    visit.ga_client_id = ids.ga_client_id or visit.ga_client_id


def _new_visit(config: TrackingConfig, view: PageView, now: datetime) -> TrackingVisit:
    pool = config.pool_for(view.source_context())
    tags = view.tags()
    return TrackingVisit(
        id=uuid.uuid4().hex,
        pool=pool.name if pool is not None else None,
        source=pool.label if pool is not None else None,
        **tags,
        metrika_client_id=view.metrika_client_id,
        roistat_visit=view.roistat_visit,
        ga_client_id=view.ga_client_id,
        landing_url=view.url,
        last_url=view.url,
        referrer=view.referrer,
        device=device_type(view.user_agent),
        ip=view.ip,
        user_agent=view.user_agent,
        created_at=now,
        last_seen_at=now,
    )


async def _show(
    session: AsyncSession,
    config: TrackingConfig,
    visit: TrackingVisit,
    now: datetime,
    *,
    page_view: bool,
    previous: TrackingLease | None = None,
    may_lease: bool = True,
) -> Shown:
    assert config.default_number is not None
    pool = config.pool_named(visit.pool)
    if pool is None:  # no pool matched (no default pool), or its pool left the configuration
        return Shown(visit.id, config.default_number)
    if not may_lease:  # a penalized address: its leases were ended, it takes no new one
        return Shown(visit.id, pool.static_number or config.default_number)
    lease = previous or await newest_lease(session, visit.id)
    if lease is not None and previous is None:
        if await pool_.extend(session, config.lease, lease, now):
            return Shown(visit.id, lease.number, lease)
        if not page_view and pool_.at_max_length(lease, config.lease, now):
            # A tab left open for hours keeps its number on screen but no longer holds it;
            # the next page view starts a new lease.
            return Shown(visit.id, lease.number)
    holder = holder_of(visit.ip)
    if await pool_.over_cap(session, config.limits, holder, now):
        return Shown(visit.id, pool.static_number or config.default_number)
    fresh = await pool_.acquire(session, config, pool, visit.id, now, previous=lease, holder=holder)
    if fresh is not None:
        return Shown(visit.id, fresh.number, fresh)
    return Shown(visit.id, pool.static_number or config.default_number)
