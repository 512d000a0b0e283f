"""Queries of the site widgets: stored budgets and callback requests, same on both databases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.leads_models import Lead
from storage.models import Call
from storage.tracking_queries import insert_ignore
from storage.widget_models import CallbackRequest, WidgetCounter


async def spend(session: AsyncSession, key: str, window_start: datetime, limit: int) -> bool:
    """Take one from `key`'s budget for the window; False (nothing taken) when it is spent.

    One conditional UPDATE: concurrent requests (other processes too) never overspend it."""
    await insert_ignore(
        session, WidgetCounter, {"key": key, "window_start": window_start, "count": 0}
    )
    result = await session.exec(
        update(WidgetCounter)
        .where(
            col(WidgetCounter.key) == key,
            col(WidgetCounter.window_start) == window_start,
            col(WidgetCounter.count) < limit,
        )
        .values(count=col(WidgetCounter.count) + 1)
    )
    return bool(result.rowcount)


async def forget_counters(session: AsyncSession, before: datetime) -> None:
    """Windows that ended long ago are of no use."""
    await session.exec(delete(WidgetCounter).where(col(WidgetCounter.window_start) < before))


async def open_request(
    session: AsyncSession, phone: str, since: datetime
) -> CallbackRequest | None:
    """The newest callback request for a phone not answered by a call yet, locked."""
    query = (
        select(CallbackRequest)
        .where(
            CallbackRequest.phone == phone,
            col(CallbackRequest.call_id).is_(None),
            col(CallbackRequest.requested_at) >= since,
        )
        .order_by(col(CallbackRequest.requested_at).desc(), col(CallbackRequest.id).desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.exec(query)).first()


async def callback_rows(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[datetime, datetime | None, bool | None]]:
    """The callback requests of [start, end): when asked, when dialled, whether answered."""
    query = (
        select(
            CallbackRequest.requested_at,
            CallbackRequest.dialled_at,
            Call.answered,
        )
        .select_from(CallbackRequest)
        .outerjoin(Call, col(Call.id) == col(CallbackRequest.call_id))
        .where(
            col(CallbackRequest.requested_at) >= start,
            col(CallbackRequest.requested_at) < end,
        )
    )
    return [(row[0], row[1], row[2]) for row in (await session.exec(query)).all()]


async def chat_lead_count(session: AsyncSession, start: datetime, end: datetime) -> int:
    """Chats started from the site's messenger links in [start, end) (their `chat` leads)."""
    query = select(func.count()).where(
        Lead.source == "chat", col(Lead.created_at) >= start, col(Lead.created_at) < end
    )
    return int((await session.exec(query)).one())
