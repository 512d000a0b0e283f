"""Clients who write through a messenger: who they are, their messages, their shared phone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.channel_models import ChannelDelivery, ClientChannel
from storage.models import Call, Client, ClientVariable, DialogMessage, PhoneIndexEntry
from storage.scenario_models import ScenarioJob
from storage.types import utcnow
from telephony.calls.apply import append_dialog
from telephony.clients import (
    client_by_identity,
    create_client,
    find_client_by_phone,
    set_client_phone,
)
from telephony.phones import normalize_phone

MESSAGE = "message"
# Called with (session, absorbed id, survivor id) before a merge: the shell moves what it owns.
BeforeMerge = Callable[[AsyncSession, int, int], Awaitable[None]]


async def messenger_client(
    session: AsyncSession, channel: str, external_id: str, name: str = ""
) -> tuple[Client, bool]:
    """The client behind a messenger account (an identity), created on first contact.
    (client, created)."""
    found = await client_by_identity(session, channel, external_id)
    if found is not None:
        return found, False
    return await create_client(session, name=name, channel=channel, external_id=external_id), True


async def record_message(
    session: AsyncSession, client: Client, text: str, direction: str
) -> DialogMessage:
    """A message either way ("in" from the client, "out" from a manager) in the dialog."""
    return await append_dialog(session, client, None, MESSAGE, text, direction=direction)


async def attach_phone(
    session: AsyncSession, client: Client, phone: str, before_merge: BeforeMerge | None = None
) -> tuple[Client, int | None]:
    """The person shared their phone: store it, merging with the client who already has it.

    Returns (the client that remains, the id of the client merged away or None). The telephony
    client of that number (found by the matching rules) remains: it holds the calls, the
    variables and the responsible manager; the messenger account and its dialog move onto it.
    """
    normalized = normalize_phone(phone)
    existing = await find_client_by_phone(session, normalized)
    if existing is None or existing.id == client.id:
        await set_client_phone(session, client, normalized)
        return client, None
    absorbed_id = client.id
    assert absorbed_id is not None and existing.id is not None
    if before_merge is not None:
        await before_merge(session, absorbed_id, existing.id)
    await merge_clients(session, survivor=existing, absorbed=client)
    return existing, absorbed_id


async def merge_clients(session: AsyncSession, *, survivor: Client, absorbed: Client) -> None:
    """Fold `absorbed` into `survivor`, keeping both histories (dialog, calls, variables)."""
    assert survivor.id is not None and absorbed.id is not None
    # Pending scenario jobs follow the person too (a callback must not vanish in a merge), and
    # so do their identities (Telegram, WhatsApp, SMS) and channel sends.
    for model in (DialogMessage, Call, ScenarioJob, ClientChannel, ChannelDelivery):
        await session.exec(
            update(model).where(col(model.client_id) == absorbed.id).values(client_id=survivor.id)
        )
    # Variables the survivor lacks move over; the survivor's own values win.
    taken = select(ClientVariable.name).where(ClientVariable.client_id == survivor.id)
    await session.exec(
        update(ClientVariable)
        .where(col(ClientVariable.client_id) == absorbed.id, col(ClientVariable.name).not_in(taken))
        .values(client_id=survivor.id)
    )
    await session.exec(delete(PhoneIndexEntry).where(col(PhoneIndexEntry.client_id) == absorbed.id))
    name = absorbed.name
    await session.delete(absorbed)
    await session.flush()
    survivor.name = survivor.name or name
    survivor.updated_at = utcnow()
    session.add(survivor)
    await session.flush()
