"""The dialog notifier: every stored call change reaches the client's topic as a queued send."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.telegram.render import (
    Notification,
    People,
    render_event,
    render_requested,
    render_status,
)
from storage.db import Database
from storage.models import Call, Client, Manager
from storage.telegram_models import TelegramDelivery
from telephony.notify import CallUpdate

EVENT_PREFIX = "_call_event "


class TopicNotifier:
    """A CallObserver. The dialog line is already committed; this stores the send, then wakes
    the queue, so a failed or postponed send is retried from the table."""

    def __init__(self, db: Database, managers_chat_id: int, wake: Callable[[], None]) -> None:
        self.db = db
        self.chat_id = managers_chat_id
        self._wake = wake

    async def call_updated(self, update: CallUpdate) -> None:
        client = update.client
        if client is None or client.id is None or update.call.internal:
            return
        async with self.db.session() as session:
            call = await session.get(Call, update.call.id) or update.call
            client = await session.get(Client, client.id) or client
            people = await _people(session, call, client.responsible_manager_id)
            sends: list[tuple[int | None, Notification]] = []
            if update.trigger == "requested":
                sends.append((None, render_requested(call, people)))
            for line in update.dialog:
                if line.kind == "call_event":
                    event = line.text.partition(EVENT_PREFIX)[2] or update.trigger
                    sends.append((line.id, render_event(event, call, client, people)))
                elif line.kind == "call_status":
                    sends.append((line.id, render_status(call, client, people)))
            for dialog_id, note in sends:
                session.add(
                    TelegramDelivery(
                        target="topic",
                        chat_id=self.chat_id,
                        client_id=client.id,
                        dialog_message_id=dialog_id,
                        call_id=call.id,
                        method="send",
                        text=note.text,
                        reply_markup=note.keyboard.model_dump_json(exclude_none=True)
                        if note.keyboard
                        else None,
                    )
                )
        if sends:
            self._wake()


async def _people(session: AsyncSession, call: Call, responsible_id: int | None) -> People:
    call_manager = None
    if call.manager_user or call.requested_user:
        login = call.manager_user or call.requested_user
        call_manager = (
            await session.exec(select(Manager).where(Manager.pbx_login == login))
        ).first()
        if call_manager is None and call.manager_ext:
            call_manager = (
                await session.exec(select(Manager).where(Manager.pbx_ext == call.manager_ext))
            ).first()
    responsible = await session.get(Manager, responsible_id) if responsible_id else None
    return People(call_manager=call_manager, responsible=responsible)
