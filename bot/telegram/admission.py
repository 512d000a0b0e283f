"""The one point where Telegram's limits are enforced: every Bot API call that puts something
into a chat spends its chat's and the bot's budget (bot/telegram/budgets.py, owned by the send
scheduler), and a 429 cools that chat off. There is no other limiter.

The scheduler plans with the same budgets (bot/telegram/policy.py: a chat's line goes only when
the calls it needs fit, up to a burst), so its sends rarely wait here; a delivery that needs
more calls than were free (a topic to create, its card, then the message) waits here for each,
as does a call made outside the scheduler (a handler's direct answer, a merged topic's
retirement).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.telegram.budgets import Budgets
from bot.telegram.status import SendStatus
from telephony.infra.clock import Clock

if TYPE_CHECKING:
    from aiogram import Bot

T = TypeVar("T")

# Bot API methods that put something into a chat: they spend the chat's and the bot's budget.
COUNTED = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "reopenForumTopic",
        "sendPhoto",
        "sendDocument",
    }
)

async def call(status: SendStatus, make: Callable[[], Awaitable[T]]) -> T:
    """One Bot API call; a refused token is reported (and its end when a call goes through)."""
    try:
        result = await make()
    except TelegramUnauthorizedError:
        status.token_refused(True)
        raise
    status.token_refused(False)
    return result


class Admission(BaseRequestMiddleware):
    """The bot session's middleware: spends the budget of every counted call, whoever makes it."""

    def __init__(self, budgets: Budgets, status: SendStatus, clock: Clock) -> None:
        self.budgets = budgets
        self.status = status
        self.clock = clock

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if method.__api_method__ not in COUNTED or not isinstance(chat_id, int):
            return await make_request(bot, method)
        budgets = self.budgets
        await budgets.acquire(chat_id)  # on the budgets' clock: tests skip the wait
        started = self.clock.monotonic()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            budgets.cool_off(chat_id, exc.retry_after)
            self.status.retry_after(chat_id)
            raise
        finally:
            budgets.landed(chat_id, self.clock.monotonic() - started)
