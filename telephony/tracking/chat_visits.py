"""A chat started from a messenger link of the site (`/start v<token>`): bound to its visit.

The client gets the visit's variables (source, UTM tags, yclid, Metrika ClientID …) and a lead
of source `chat` is made from the visit, once per client and visit: exact by construction, the
token names the visit and is signed (`telephony/tracking/chat_links.py`).
"""

from __future__ import annotations

import logging

from storage.db import Database
from storage.models import Client
from storage.tracking_models import TrackingVisit
from telephony.clients import set_variables
from telephony.events import ClientMessage
from telephony.tracking.callback import VisitLead, VisitLeads, visit_variables
from telephony.tracking.chat_links import code_in, visit_of

log = logging.getLogger(__name__)

SOURCE = "chat"


class VisitChats:
    def __init__(self, db: Database, leads: VisitLeads, key: bytes) -> None:
        self.db = db
        self.leads = leads
        self.key = key

    def visit_of(self, token: str) -> str | None:
        """The visit a `/start` argument names, or None (not ours, forged, damaged)."""
        return visit_of(self.key, token)

    async def chat_started(self, client_id: int, visit_id: str) -> int | None:
        """Bind the client to the visit; the lead's id (None: the visit or client is gone)."""
        async with self.db.session() as session:
            visit = await session.get(TrackingVisit, visit_id)
            client = await session.get(Client, client_id)
            if visit is None or client is None:
                return None
            await set_variables(session, client, visit_variables(visit))
            phone, name = client.phone, client.name or None
        lead_id, _ = await self.leads.visit_lead(
            VisitLead(
                SOURCE,
                phone,
                name,
                visit,
                client_id=client_id,
                external_key=f"chat:{visit_id}:{client_id}",
            )
        )
        log.info("chat of client %s started from visit %s: lead %s", client_id, visit_id, lead_id)
        return lead_id


class WhatsAppVisitCodes:
    """A MessageObserver: WhatsApp has no start parameter, so the site's WhatsApp link prefills
    the visit's code in the first message; a message carrying a valid code binds the chat to
    that visit like `/start v…` does in Telegram (a `chat` lead with the visit's source, once
    per client and visit)."""

    def __init__(self, chats: VisitChats) -> None:
        self._chats = chats

    async def message_received(self, message: ClientMessage) -> None:
        if message.channel != "whatsapp":
            return
        code = code_in(message.text)
        visit_id = self._chats.visit_of(code) if code is not None else None
        if visit_id is not None:
            await self._chats.chat_started(message.client_id, visit_id)
