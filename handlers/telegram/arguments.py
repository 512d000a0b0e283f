"""Commands that take an argument from a manager."""

from __future__ import annotations

from aiogram.filters import CommandObject
from aiogram.types import Message

from handlers.telegram import texts
from storage.models import Manager


async def manager_argument(
    message: Message, command: CommandObject, manager: Manager | None, usage: str
) -> tuple[Manager, str] | None:
    """(manager, argument) when a manager gave one; otherwise answer why and return None."""
    if manager is None:
        await message.answer(texts.NOT_A_MANAGER)
        return None
    raw = (command.args or "").strip()
    if not raw:
        await message.answer(usage)
        return None
    return manager, raw
