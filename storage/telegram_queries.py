"""Queries over the Telegram tables."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.telegram_models import TelegramDelivery, TelegramTopic


async def topic_of(session: AsyncSession, client_id: int) -> TelegramTopic | None:
    return await session.get(TelegramTopic, client_id)


async def move_client_rows(session: AsyncSession, from_id: int, to_id: int) -> None:
    """Before two clients merge: pending sends follow the person; a topic moves if `to` has none."""
    await session.exec(
        update(TelegramDelivery)
        .where(col(TelegramDelivery.client_id) == from_id)
        .values(client_id=to_id)
    )
    if await session.get(TelegramTopic, to_id) is None:
        await session.exec(
            update(TelegramTopic)
            .where(col(TelegramTopic.client_id) == from_id)
            .values(client_id=to_id)
        )
    else:
        await session.exec(delete(TelegramTopic).where(col(TelegramTopic.client_id) == from_id))
