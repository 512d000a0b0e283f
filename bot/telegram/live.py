"""A call's live message in its client's topic: one message edited to the call's latest state."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.telegram.admission import call
from bot.telegram.policy import live_text
from bot.telegram.status import SendStatus
from storage import telegram_queue as queue
from storage.db import Database
from storage.queue import Status
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import ALERT

log = logging.getLogger(__name__)

# Refusals saying the live message cannot be edited any more: send it again.
MESSAGE_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


async def send_live(
    bot: Bot,
    db: Database,
    status: SendStatus,
    batch: list[TelegramDelivery],
    chat_id: int,
    thread_id: int | None,
) -> int:
    """Edit the call's live message to hold every live line up to the batch's last (pending
    lines collapse into one edit); send it if none is standing in this topic (first line,
    deleted topic, message gone). Only a ringing call's first send notifies."""
    last = batch[-1]
    assert last.id is not None
    lines = await queue.live_lines(db, last.call_id, last.id)
    text = live_text(lines)
    ids = {row.id for row in batch}
    standing = next(
        (
            line
            for line in reversed(lines)
            if line.id not in ids
            and line.status == Status.SENT
            and line.sent_message_id
            and line.sent_thread_id == thread_id
        ),
        None,
    )
    if standing is not None and standing.sent_message_id is not None:
        message_id = standing.sent_message_id
        try:
            await call(
                status,
                lambda: bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, parse_mode="HTML"
                ),
            )
            return message_id
        except TelegramBadRequest as exc:
            reason = exc.message.lower()
            if "not modified" in reason:
                return message_id
            if not any(s in reason for s in MESSAGE_GONE):
                raise
            log.info("live message of call %s is gone: sending it again", last.call_id)
    silent = batch[0].lane != ALERT
    message = await call(
        status,
        lambda: bot.send_message(
            chat_id,
            text,
            message_thread_id=thread_id,
            parse_mode="HTML",
            disable_notification=silent,
        ),
    )
    return message.message_id
