"""The dialog notifier: every stored call change reaches the client's topic as a queued send."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.telegram.render import (
    Notification,
    People,
    render_event,
    render_requested,
    render_status,
)
from storage.db import Database
from storage.models import Call, Client, DialogMessage, Manager
from storage.telegram_models import TelegramDelivery
from telephony.notify import CallUpdate

EVENT_PREFIX = "_call_event "
CATCH_UP_MARGIN = timedelta(minutes=10)
CATCH_UP_LIMIT = 500
log = logging.getLogger(__name__)


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
            added = await self._enqueue(
                session, update.call, client, update.dialog, requested=update.trigger == "requested"
            )
        if added:
            self._wake()

    async def catch_up(self) -> int:
        """Queue call lines stored while no send was queued for them (the process stopped
        between the call's commit and ours). Only lines newer than the oldest send of the last
        run are looked at, so turning Telegram on does not replay the whole history."""
        async with self.db.session() as session:
            latest = (
                await session.exec(
                    select(TelegramDelivery.created_at)
                    .where(col(TelegramDelivery.dialog_message_id).is_not(None))
                    .order_by(col(TelegramDelivery.id).desc())
                    .limit(1)
                )
            ).first()
            if latest is None:
                return 0
            queued = select(TelegramDelivery.dialog_message_id).where(
                col(TelegramDelivery.dialog_message_id).is_not(None)
            )
            lines = list(
                (
                    await session.exec(
                        select(DialogMessage)
                        .where(
                            col(DialogMessage.kind).in_(("call_event", "call_status")),
                            col(DialogMessage.created_at) >= latest - CATCH_UP_MARGIN,
                            col(DialogMessage.id).not_in(queued),
                            col(DialogMessage.call_id).is_not(None),
                        )
                        .order_by(col(DialogMessage.id))
                        .limit(CATCH_UP_LIMIT)
                    )
                ).all()
            )
            added = 0
            for line in lines:
                call = await session.get(Call, line.call_id)
                client = await session.get(Client, line.client_id)
                if call is not None and client is not None and not call.internal:
                    added += await self._enqueue(session, call, client, [line])
        if added:
            log.info("queued %d call notes stored while no send was queued", added)
            self._wake()
        return added

    async def _enqueue(
        self,
        session: AsyncSession,
        stale_call: Call,
        stale_client: Client,
        dialog: list[DialogMessage],
        *,
        requested: bool = False,
    ) -> int:
        call = await session.get(Call, stale_call.id) or stale_call
        client = await session.get(Client, stale_client.id) or stale_client
        people = await _people(session, call, client.responsible_manager_id)
        # Events are lines of the call's one live message; the outcome is a message of its own
        # (managers get notified, a missed call carries its call-back button).
        sends: list[tuple[int | None, str, Notification]] = []
        if requested:
            sends.append((None, "live", render_requested(call, people)))
        for line in dialog:
            if line.kind == "call_event":
                event = line.text.partition(EVENT_PREFIX)[2] or "?"
                sends.append((line.id, "live", render_event(event, call, client, people)))
            elif line.kind == "call_status":
                sends.append((line.id, "send", render_status(call, client, people)))
        for dialog_id, method, note in sends:
            session.add(
                TelegramDelivery(
                    target="topic",
                    chat_id=self.chat_id,
                    client_id=client.id,
                    dialog_message_id=dialog_id,
                    call_id=call.id,
                    method=method,
                    text=note.text,
                    reply_markup=note.keyboard.model_dump_json(exclude_none=True)
                    if note.keyboard
                    else None,
                )
            )
        return len(sends)


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
