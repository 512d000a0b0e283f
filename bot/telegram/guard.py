"""Every Bot API request passes the house rule's check: no database session open meanwhile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType

from telephony.infra.transaction_guard import check_no_open_session

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response


class NoOpenSession(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        check_no_open_session(f"Telegram {type(method).__name__}")
        return await make_request(bot, method)
