"""«Беру»: a manager takes a missed call from a private escalation; the topic says who."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery

from handlers.telegram import texts
from handlers.telegram.cards import CallAction
from handlers.telegram.context import TelegramContext
from storage.models import Call, Manager
from storage.telegram_queue import MESSAGE, Outgoing, enqueue, take_call
from telephony.access import audit


async def take_tapped(
    callback: CallbackQuery,
    callback_data: CallAction,
    tg: TelegramContext,
    manager: Manager | None,
) -> None:
    if manager is None or manager.id is None:
        await callback.answer(texts.NOT_A_MANAGER, show_alert=True)
        return
    async with tg.db.session() as session:
        call = await session.get(Call, callback_data.call_id)
        if call is None:
            answer, took = texts.CLIENT_NOT_FOUND, False
        else:
            taker = await take_call(session, callback_data.call_id, manager.id)
            took = taker.manager_id == manager.id
            holder = await session.get(Manager, taker.manager_id) if taker.manager_id else None
            answer = texts.TAKEN if took else texts.already_taken(holder)
            audit.record(
                session,
                audit.telegram_actor(callback.from_user.id, callback.from_user.username),
                "call.take",
                f"call:{call.id}",
                outcome="ok" if took else f"taken by manager:{taker.manager_id}",
            )
            if took and tg.managers_chat_id is not None and call.client_id is not None:
                enqueue(
                    session,
                    Outgoing(
                        target="topic",
                        chat_id=tg.managers_chat_id,
                        client_id=call.client_id,
                        call_id=call.id,
                        lane=MESSAGE,
                        text=texts.call_taken(manager),
                    ),
                )
    if took:
        tg.topics.wake()
    await callback.answer(answer, show_alert=not took)


def build_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    router = Router(name="alerts")
    router.callback_query.register(take_tapped, CallAction.filter(F.action == "take"))
    return router
