"""The number pool: leases with kept history and a least-recently-released queue.

A number is free once its newest lease ended (`held_until` passed). The free number released
longest ago goes out first, so a number just given back waits at the end of the queue and a
late call from its previous holder still finds that holder in the history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tracking_models import TrackingLease, TrackingNumber
from storage.tracking_queries import insert_ignore, live_leases, lock_number, next_free_number
from telephony.tracking.config import LeasePolicy, Limits, Pool, TrackingConfig
from telephony.tracking.guard import Holder

# Numbers never leased sort before every released one.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


async def sync_numbers(session: AsyncSession, config: TrackingConfig) -> None:
    """Make the numbers table follow trubka.toml. Removed numbers stop being leased; their
    leases stay for the calls still to come."""
    configured = {number: pool.name for pool in config.pools for number in pool.numbers}
    for number, pool in configured.items():
        added = await insert_ignore(
            session,
            TrackingNumber,
            {"number": number, "pool": pool, "active": True, "held_until": NEVER},
        )
        if not added:
            await session.exec(
                update(TrackingNumber)
                .where(col(TrackingNumber.number) == number)
                .values(pool=pool, active=True)
            )
    stale = select(TrackingNumber.number).where(col(TrackingNumber.number).not_in(list(configured)))
    for number in (await session.exec(stale)).all():
        await session.exec(
            update(TrackingNumber).where(col(TrackingNumber.number) == number).values(active=False)
        )


def _stretch(lease: TrackingLease, policy: LeasePolicy, now: datetime) -> None:
    """A ping at `now`: shown until the idle timeout (never past the maximum length), and
    counting for calls until the grace after this ping."""
    lease.last_ping_at = now
    lease.ends_at = min(
        now + timedelta(seconds=policy.idle_timeout),
        lease.started_at + timedelta(seconds=policy.max_length),
    )
    lease.counts_until = max(lease.ends_at, now + timedelta(seconds=policy.grace))


def at_max_length(lease: TrackingLease, policy: LeasePolicy, now: datetime) -> bool:
    return lease.started_at + timedelta(seconds=policy.max_length) <= now


async def extend(
    session: AsyncSession, policy: LeasePolicy, lease: TrackingLease, now: datetime
) -> bool:
    """Keep a live lease alive. False when it already ended (the number may be someone else's)."""
    if lease.ends_at <= now or at_max_length(lease, policy, now):
        return False
    number = await lock_number(session, lease.number)
    if number is None or number.lease_id != lease.id:
        return False
    _stretch(lease, policy, now)
    number.held_until = lease.ends_at
    session.add_all([lease, number])
    return True


async def end(session: AsyncSession, lease: TrackingLease, now: datetime) -> None:
    """Stop showing a lease's number now (the visitor started a new visit). History stays."""
    if lease.ends_at <= now:
        return
    lease.ends_at = now
    number = await lock_number(session, lease.number)
    if number is not None and number.lease_id == lease.id:
        number.held_until = now
        session.add(number)
    session.add(lease)


async def release_holder(
    session: AsyncSession, holder: Holder, now: datetime, *, whole_network: bool = False
) -> int:
    """End every live lease an address (or its whole network) took: a penalized script keeps no
    number, and later calls to those numbers are not attributed to its visits."""
    query = select(TrackingLease.id, TrackingLease.number).where(col(TrackingLease.ends_at) > now)
    if whole_network:
        query = query.where(TrackingLease.network == holder.network)
    else:
        query = query.where(TrackingLease.address == holder.address)
    ended = 0
    for lease_id, number_ in (await session.exec(query)).all():
        # The number first, then its lease: the order a ping's extend() takes them in.
        number = await lock_number(session, number_)
        lease = await session.get(
            TrackingLease, lease_id, with_for_update=True, populate_existing=True
        )
        if lease is None or lease.ends_at <= now:
            continue
        lease.ends_at = lease.counts_until = now
        session.add(lease)
        if number is not None and number.lease_id == lease.id:
            number.held_until = now
            session.add(number)
        ended += 1
    return ended


async def over_cap(
    session: AsyncSession, limits: Limits, holder: Holder | None, now: datetime
) -> bool:
    """The address (or its network) already holds as many live leases as it may. A soft cap:
    two visits from one address arriving at the same instant may both pass it."""
    if holder is None:
        return False
    if limits.leases_per_address and (
        await live_leases(session, now=now, address=holder.address) >= limits.leases_per_address
    ):
        return True
    return bool(limits.leases_per_network) and (
        await live_leases(session, now=now, network=holder.network) >= limits.leases_per_network
    )


async def acquire(
    session: AsyncSession,
    config: TrackingConfig,
    pool: Pool,
    visit_id: str,
    now: datetime,
    previous: TrackingLease | None = None,
    holder: Holder | None = None,
) -> TrackingLease | None:
    """Lease a number of the pool to a visit; None when every number is held.

    A returning visitor gets their previous number back when nobody took it meanwhile: the
    number on their screen (or in their notes) stays theirs.
    """
    number: TrackingNumber | None = None
    if previous is not None and previous.pool == pool.name:
        candidate = await lock_number(session, previous.number)
        if (
            candidate is not None
            and candidate.active
            and candidate.pool == pool.name
            and candidate.lease_id == previous.id
            and candidate.held_until <= now
        ):
            number = candidate
    if number is None:
        number = await next_free_number(session, pool.name, now)
    if number is None:
        return None
    lease = TrackingLease(
        number=number.number,
        pool=pool.name,
        visit_id=visit_id,
        started_at=now,
        last_ping_at=now,
        ends_at=now,
        counts_until=now,
        address=holder.address if holder is not None else None,
        network=holder.network if holder is not None else None,
    )
    _stretch(lease, config.lease, now)
    session.add(lease)
    await session.flush()
    number.lease_id = lease.id
    number.held_until = lease.ends_at
    session.add(number)
    return lease
