"""Telegram updates shaped like the real ones, fed through the real dispatcher."""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web

from bot.telegram.wiring import TELEGRAM

GROUP = -1001234567890
ADMIN = 1
MANAGER = 500
STRANGER = 999
CLIENT_USER = 700


def telegram_app_settings(api_url: str) -> dict[str, Any]:
    """The settings of an app whose Telegram is the fake Bot API at `api_url`: the managers'
    group, an admin, and the app's budgets on the fake's shortened windows (it enforces them)."""
    from tests.conftest import TELEGRAM_SCALE
    from tests.fakes.telegram import TOKEN

    return {
        "telegram_token": TOKEN,
        "telegram_api_url": api_url,
        "telegram_managers_chat_id": GROUP,
        "telegram_admin_ids": str(ADMIN),
        "telegram_time_scale": TELEGRAM_SCALE,
    }


_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def user(user_id: int, name: str = "Иван") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


def message(
    sender: int,
    text: str | None = None,
    *,
    chat_id: int | None = None,
    thread_id: int | None = None,
    name: str = "Иван",
    **extra: Any,
) -> dict[str, Any]:
    chat_id = sender if chat_id is None else chat_id
    chat: dict[str, Any] = (
        {"id": chat_id, "type": "private", "first_name": name}
        if chat_id > 0
        else {"id": chat_id, "type": "supergroup", "title": "Менеджеры", "is_forum": True}
    )
    body: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat,
        "from": user(sender, name),
        **extra,
    }
    if text is not None:
        body["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    if thread_id is not None:
        body["message_thread_id"] = thread_id
        body["is_topic_message"] = True
    return {"update_id": next(_update_ids), "message": body}


def callback(
    sender: int, data: str, *, chat_id: int = GROUP, thread_id: int | None = None
) -> dict[str, Any]:
    origin = message(ADMIN if chat_id < 0 else sender, "card", chat_id=chat_id, thread_id=thread_id)
    origin["message"]["from"] = {"id": 42, "is_bot": True, "first_name": "Trubka"}
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": f"cb{next(_update_ids)}",
            "from": user(sender),
            "chat_instance": "ci",
            "data": data,
            "message": origin["message"],
        },
    }


async def feed(app: web.Application, update: dict[str, Any]) -> None:
    """Handle one update through the app's dispatcher, then send what it queued."""
    telegram = app[TELEGRAM]
    await telegram.dispatcher.feed_raw_update(telegram.bot, update)
    await telegram.sender.drain(include_waiting=True)


async def flush(app: web.Application) -> None:
    await app[TELEGRAM].sender.drain(include_waiting=True)
