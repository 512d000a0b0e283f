"""`/start v<token>`: a client came from the site's "Написать в Telegram" link.

The token names the site visit (`telephony/tracking/chat_links.py`); the chat is bound to it
(`telephony/tracking/chat_visits.py`), then the client is greeted as any `/start`. Other
deep-link tokens (other prefixes) and a token that does not check out go to the usual `/start`.
Included before the private chats' router, so it sees `/start v…` first.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import Message

from handlers.telegram import chats
from handlers.telegram.context import TelegramContext
from storage.models import Manager
from telephony.chats import messenger_client
from telephony.tracking.chat_visits import VisitChats

# Visit tokens: "v" and 38 characters of base64url.
TOKEN = r"^v[A-Za-z0-9_-]{38}$"


async def start_from_visit(
    message: Message,
    command: CommandObject,
    tg: TelegramContext,
    manager: Manager | None,
    visit_chats: VisitChats | None = None,
) -> None:
    user = message.from_user
    visit_id = visit_chats.visit_of(command.args or "") if visit_chats is not None else None
    if visit_chats is not None and visit_id is not None and manager is None and user is not None:
        async with tg.db.session() as session:
            client, _ = await messenger_client(session, chats.CHANNEL, str(user.id), user.full_name)
        assert client.id is not None
        await visit_chats.chat_started(client.id, visit_id)
    await chats.start(message, tg, manager, command)


def build_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    router = Router(name="visit links")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(
        start_from_visit, CommandStart(deep_link=True, magic=F.args.regexp(TOKEN))
    )
    return router
