"""Finding and creating clients by phone, the Salebot way, their identities and variables.

Matching order (DESIGN.md): 1. the client whose own phone it is (Salebot's "telephony client":
a caller, or a messenger client who shared the phone, merged into one); 2. else the first client
(oldest) any of whose variables holds that phone; 3. else a new client, reachable by the
channels addressed by phone that are configured (SMS, WhatsApp: identities for that phone),
otherwise telephony-only (calls only). Both lookups go through the phone index, never a scan.

Identities (`client_channels`): a client has any number, (kind, address) belongs to one client.
A client's `channel` (the API, scenarios) is the channel they last wrote from, else their
first identity in the order WhatsApp, Telegram, SMS, else "telephony".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, case, delete, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.channel_models import ClientChannel
from storage.models import Client, ClientVariable, Manager, PhoneIndexEntry
from storage.queries import delete_variables, upsert_variables
from storage.types import utcnow
from telephony.phones import looks_like_phone, normalize_phone

TELEPHONY = "telephony"
_OWN_PHONE = ""  # PhoneIndexEntry.variable for the client's own phone field
# Variables Trubka writes about calls (ids, extensions): never a client's phone, never indexed.
_SYSTEM_PREFIXES = ("megafon_", "novofon_")


_CLIENTS = Client.__table__  # type: ignore[attr-defined]
_INDEX = PhoneIndexEntry.__table__  # type: ignore[attr-defined]
_MANAGERS = Manager.__table__  # type: ignore[attr-defined]
_VARIABLES = ClientVariable.__table__  # type: ignore[attr-defined]
_IDENTITIES = ClientChannel.__table__  # type: ignore[attr-defined]
# The Salebot order in one indexed lookup: the client whose own phone it is, else the oldest
# client whose phone or any variable holds it.
_SALEBOT_ORDER = (
    case((_INDEX.c.variable == _OWN_PHONE, 0), else_=1),
    _CLIENTS.c.id,
)
# Which identity names a client's channel when they never wrote: lower first.
_KIND_ORDER = case(
    (_IDENTITIES.c.kind == "whatsapp", 0), (_IDENTITIES.c.kind == "telegram", 1), else_=2
)
_CHANNEL_OF = (
    core_select(_IDENTITIES.c.kind)
    .where(_IDENTITIES.c.client_id == _CLIENTS.c.id)
    .order_by(
        _IDENTITIES.c.last_incoming_at.is_(None),
        _IDENTITIES.c.last_incoming_at.desc(),
        _KIND_ORDER,
        _IDENTITIES.c.id,
    )
    .limit(1)
    .correlate(_CLIENTS)
    .scalar_subquery()
)
_BY_PHONE = (
    select(Client)
    .join(PhoneIndexEntry, col(PhoneIndexEntry.client_id) == col(Client.id))
    .where(col(PhoneIndexEntry.phone) == bindparam("phone"))
    .order_by(col(Client.id))
    .limit(1)
)
_OWN_BY_PHONE = _BY_PHONE.where(col(PhoneIndexEntry.variable) == _OWN_PHONE)
# The hot read paths (the PBX's `contact` question, GET /api/v1/clients): Core statements built
# once, on a read connection; the client with its responsible manager's identities.
_CLIENT_VIEW = core_select(
    _CLIENTS.c.id,
    _CLIENTS.c.name,
    _CLIENTS.c.phone,
    func.coalesce(_CHANNEL_OF, TELEPHONY).label("channel"),
    _CLIENTS.c.created_at,
    _MANAGERS.c.pbx_login,
    _MANAGERS.c.pbx_ext,
    _MANAGERS.c.pbx_telnum,
)
_VIEW_BY_PHONE = (
    _CLIENT_VIEW.select_from(
        _INDEX.join(_CLIENTS, _CLIENTS.c.id == _INDEX.c.client_id).outerjoin(
            _MANAGERS, _MANAGERS.c.id == _CLIENTS.c.responsible_manager_id
        )
    )
    .where(_INDEX.c.phone == bindparam("phone"))
    .order_by(*_SALEBOT_ORDER)
    .limit(1)
)
_VIEW_BY_ID = _CLIENT_VIEW.select_from(
    _CLIENTS.outerjoin(_MANAGERS, _MANAGERS.c.id == _CLIENTS.c.responsible_manager_id)
).where(_CLIENTS.c.id == bindparam("client"))
_VARIABLES_OF = (
    core_select(_VARIABLES.c.name, _VARIABLES.c.value)
    .where(_VARIABLES.c.client_id == bindparam("client"))
    .order_by(_VARIABLES.c.name)
)


# A row of the client view: id, name, phone, channel, created_at, and the responsible manager's
# pbx_login, pbx_ext, pbx_telnum (None without one).
ClientView = Row[Any, Any, Any, Any, Any, Any, Any, Any]


async def find_client_by_phone(session: AsyncSession, phone: str) -> Client | None:
    """The Salebot order over the index. `phone` is any written form."""
    params = {"phone": normalize_phone(phone)}
    own = (await session.exec(_OWN_BY_PHONE, params=params)).first()
    if own is not None:
        return own
    return (await session.exec(_BY_PHONE, params=params)).first()


async def client_view_by_phone(connection: AsyncConnection, phone: str) -> ClientView | None:
    """The client a phone (any written form) belongs to, the Salebot way: `id, name, phone,
    channel, created_at` and the responsible manager's `pbx_login, pbx_ext, pbx_telnum`."""
    result = await connection.execute(_VIEW_BY_PHONE, {"phone": normalize_phone(phone)})
    return result.first()


async def client_view_by_id(connection: AsyncConnection, client_id: int) -> ClientView | None:
    return (await connection.execute(_VIEW_BY_ID, {"client": client_id})).first()


async def variables_of(connection: AsyncConnection, client_id: int) -> dict[str, str]:
    rows = await connection.execute(_VARIABLES_OF, {"client": client_id})
    return {name: value for name, value in rows}


async def create_client(
    session: AsyncSession,
    *,
    phone: str | None = None,
    name: str = "",
    channel: str = TELEPHONY,
    external_id: str | None = None,
) -> Client:
    """A new client; `channel` + `external_id` (a messenger account) becomes its identity."""
    normalized = normalize_phone(phone) if phone else None
    client = Client(name=name, phone=normalized)
    session.add(client)
    await session.flush()
    if normalized:
        await _index(session, client, normalized, _OWN_PHONE)
    if channel != TELEPHONY and external_id:
        await add_identity(session, client, channel, external_id)
    return client


async def match_or_create_client(
    session: AsyncSession, phone: str, *, reachable_by: Sequence[str] = ()
) -> tuple[Client, bool]:
    """The client for a phone, created when nobody has it. Returns (client, created).

    Step 3 of the Salebot order: `reachable_by` are the configured channels addressed by phone
    (`sms`, `whatsapp`); a new client gets an identity in each (their address is the phone), so
    scenarios can write to a caller who never wrote. Without any it is a telephony-only client
    (Telegram bots cannot start a chat from a phone number).
    """
    found = await find_client_by_phone(session, phone)
    if found is not None:
        return found, False
    client = await create_client(session, phone=phone)
    assert client.phone is not None
    for kind in reachable_by:
        await add_identity(session, client, kind, client.phone)
    return client, True


_PHONE_HOLDERS = select(
    PhoneIndexEntry.phone, PhoneIndexEntry.variable, PhoneIndexEntry.client_id
).where(among_param(col(PhoneIndexEntry.phone), "phones"))
_NEW_CLIENTS = insert(_CLIENTS).returning(_CLIENTS.c.id, _CLIENTS.c.phone)
_NEW_INDEX_ENTRIES = insert(_INDEX)


async def clients_for_phones(
    session: AsyncSession, phones: Sequence[str]
) -> tuple[dict[str, int], list[int]]:
    """`match_or_create_client` for many phones at once (no channel reachable by phone: the
    call path's): each phone's client id, and the ids of the clients created (one per phone
    nobody had, in the order of `phones`). Three statements, however many phones."""
    normalized = {phone: normalize_phone(phone) for phone in phones}
    params = {"phones": sorted(set(normalized.values()))}
    best: dict[str, tuple[int, int]] = {}
    for phone, variable, client_id in (await session.exec(_PHONE_HOLDERS, params=params)).all():
        rank = (0 if variable == _OWN_PHONE else 1, client_id)  # the Salebot order
        if phone not in best or rank < best[phone]:
            best[phone] = rank
    found = {number: rank[1] for number, rank in best.items()}
    missing = list(dict.fromkeys(n for n in normalized.values() if n not in found))
    created: list[int] = []
    if missing:
        now = utcnow()
        rows = [{"name": "", "phone": n, "created_at": now, "updated_at": now} for n in missing]
        new = {
            phone: client_id
            for client_id, phone in (await session.exec(_NEW_CLIENTS, params=rows)).all()
        }
        created = [new[n] for n in missing]
        found.update(new)
        entries = [{"phone": n, "client_id": new[n], "variable": _OWN_PHONE} for n in missing]
        await session.exec(_NEW_INDEX_ENTRIES, params=entries)
    return {phone: found[n] for phone, n in normalized.items()}, created


def system_variable(name: str) -> bool:
    """A variable Trubka writes about calls: never a client's phone, never indexed."""
    return name.startswith(_SYSTEM_PREFIXES)


# --- identities ---------------------------------------------------------------------------


async def identities_of(session: AsyncSession, client_id: int) -> list[ClientChannel]:
    rows = await session.exec(
        select(ClientChannel)
        .where(ClientChannel.client_id == client_id)
        .order_by(col(ClientChannel.id))
    )
    return list(rows.all())


async def identity(session: AsyncSession, kind: str, address: str) -> ClientChannel | None:
    query = select(ClientChannel).where(
        ClientChannel.kind == kind, ClientChannel.address == address
    )
    return (await session.exec(query)).first()


async def client_by_identity(session: AsyncSession, kind: str, address: str) -> Client | None:
    found = await identity(session, kind, address)
    return await session.get(Client, found.client_id) if found is not None else None


async def add_identity(
    session: AsyncSession, client: Client, kind: str, address: str
) -> ClientChannel:
    """Give the client this identity (kept when they have it). An address another client holds
    is the caller's to resolve first (a merge): here it raises ValueError."""
    assert client.id is not None
    found = await identity(session, kind, address)
    if found is not None:
        if found.client_id != client.id:
            raise ValueError(f"{kind}:{address} belongs to client {found.client_id}")
        return found
    row = ClientChannel(client_id=client.id, kind=kind, address=address)
    session.add(row)
    await session.flush()
    return row


async def wrote_from(session: AsyncSession, kind: str, address: str, at: datetime) -> None:
    """The client wrote from this identity now (routing's first choice; WhatsApp's window)."""
    await session.exec(
        update(ClientChannel)
        .where(col(ClientChannel.kind) == kind, col(ClientChannel.address) == address)
        .values(last_incoming_at=at)
    )


def channel_of(identities: Sequence[ClientChannel]) -> str:
    """The client's `channel`: the one they last wrote from, else the first identity in the
    order WhatsApp, Telegram, SMS, else "telephony" (the same order as the API's view)."""
    if not identities:
        return TELEPHONY
    preference = {"whatsapp": 0, "telegram": 1}
    best = min(
        identities,
        key=lambda row: (
            row.last_incoming_at is None,
            -(row.last_incoming_at.timestamp() if row.last_incoming_at else 0.0),
            preference.get(row.kind, 2),
            row.id or 0,
        ),
    )
    return best.kind


async def set_client_phone(session: AsyncSession, client: Client, phone: str) -> None:
    normalized = normalize_phone(phone)
    await session.exec(
        delete(PhoneIndexEntry).where(
            col(PhoneIndexEntry.client_id) == client.id,
            col(PhoneIndexEntry.variable) == _OWN_PHONE,
        )
    )
    client.phone = normalized
    client.updated_at = utcnow()
    session.add(client)
    await _index(session, client, normalized, _OWN_PHONE)


async def get_variables(session: AsyncSession, client_id: int) -> dict[str, str]:
    rows = await session.exec(
        select(ClientVariable.name, ClientVariable.value)
        .where(ClientVariable.client_id == client_id)
        .order_by(col(ClientVariable.name))
    )
    return dict(rows.all())


async def set_variables(
    session: AsyncSession, client: Client, values: Mapping[str, str | None]
) -> dict[str, str]:
    """Set (or, with None, clear) variables; a value that is a phone is indexed. Returns changes."""
    assert client.id is not None
    to_set = {name: value for name, value in values.items() if value is not None}
    to_clear = [name for name, value in values.items() if value is None]
    changed = await upsert_variables(session, client.id, to_set, utcnow())
    cleared = await delete_variables(session, client.id, to_clear)
    for name in [*changed, *cleared]:
        if system_variable(name):
            continue  # never indexed, nothing to keep in step
        await _unindex_variable(session, client.id, name)
        phone = looks_like_phone(changed[name]) if name in changed else None
        if phone is not None:
            await _index(session, client, phone, name)
    return changed


async def _index(session: AsyncSession, client: Client, phone: str, variable: str) -> None:
    assert client.id is not None
    session.add(PhoneIndexEntry(phone=phone, client_id=client.id, variable=variable))
    await session.flush()


async def _unindex_variable(session: AsyncSession, client_id: int, variable: str) -> None:
    await session.exec(
        delete(PhoneIndexEntry).where(
            col(PhoneIndexEntry.client_id) == client_id,
            col(PhoneIndexEntry.variable) == variable,
        )
    )


async def contact_card(connection: AsyncConnection, phone: str) -> dict[str, str]:
    """The PBX's `contact` answer: the client's name and responsible manager, `{}` if unknown."""
    client = await client_view_by_phone(connection, phone)
    if client is None:
        return {}
    card: dict[str, str] = {}
    if client.name:
        card["contact_name"] = client.name
    identity = client.pbx_login or client.pbx_ext or client.pbx_telnum
    if identity:
        card["responsible"] = identity
    return card
