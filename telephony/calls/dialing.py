"""`megafon_call(client_phone, user)`: the PBX rings the manager, then the client; a manager
bound to Novofon is called through Novofon's callback instead (`place_manager_call`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col

from storage.db import Database
from storage.models import Call, CallRef, Manager
from storage.queries import insert_or_ignore
from storage.types import utcnow
from telephony.calls.outcome import CallEventType
from telephony.clients import match_or_create_client
from telephony.events import CallObserver, CallUpdate
from telephony.phones import InvalidPhone, normalize_phone
from telephony.providers.megafon import PROVIDER, MegafonClient, PbxError
from telephony.providers.novofon import PROVIDER as NOVOFON
from telephony.providers.novofon import NovofonClient


class CallRequestError(ValueError):
    """The request itself is wrong (a bad phone, no user); nothing was sent to the PBX."""


class PbxNotConfigured(PbxError):
    """The PBX a call needs is not set up here: `settings` names what to set. A PbxError,
    so callers that only know PbxError still report it."""

    def __init__(self, provider: str, settings: tuple[str, ...]) -> None:
        name = "MegaFon" if provider == PROVIDER else "Novofon"
        super().__init__(f"{name} is not configured: set " + " and ".join(settings))
        self.provider = provider
        self.settings = settings


@dataclass(frozen=True)
class RequestedCall:
    call_id: int
    client_id: int
    phone: str
    pbx_callid: str | None


async def megafon_call(
    db: Database,
    pbx: MegafonClient | None,
    client_phone: str,
    user: str,
    observer: CallObserver,
) -> RequestedCall:
    """Salebot's function. Raises CallRequestError (bad input) or PbxError (the PBX refused).

    The call is stored before the PBX is asked, so pushes that race the PBX's answer attach to it.
    """
    phone, user = _checked(client_phone, user)
    if pbx is None:
        raise PbxNotConfigured(PROVIDER, ("TRUBKA_MEGAFON_URL", "TRUBKA_MEGAFON_API_KEY"))
    return await _request_call(db, PROVIDER, phone, user, pbx.make_call, observer)


async def novofon_call(
    db: Database,
    novofon: NovofonClient | None,
    client_phone: str,
    extension: str,
    observer: CallObserver,
) -> RequestedCall:
    """Novofon's callback: it rings the manager's `extension` (or SIP/number), then the client.

    Novofon answers without a call id: its NOTIFY_OUT_* pushes attach to the stored call by phone.
    """
    phone, extension = _checked(client_phone, extension)
    if novofon is None:
        raise PbxNotConfigured(NOVOFON, ("TRUBKA_NOVOFON_KEY", "TRUBKA_NOVOFON_SECRET"))

    async def dial(to: str, from_: str) -> str | None:
        await novofon.callback(from_, to)
        return None

    return await _request_call(db, NOVOFON, phone, extension, dial, observer)


def _checked(client_phone: str, user: str) -> tuple[str, str]:
    try:
        phone = normalize_phone(client_phone)
    except InvalidPhone as exc:
        raise CallRequestError(str(exc)) from None
    user = user.strip()
    if not user:
        raise CallRequestError("user is empty: give a PBX login, extension or direct number")
    return phone, user


async def _request_call(
    db: Database,
    provider: str,
    phone: str,
    user: str,
    dial: Callable[[str, str], Awaitable[str | None]],
    observer: CallObserver,
) -> RequestedCall:
    now = utcnow()
    async with db.session() as session:
        client, created = await match_or_create_client(session, phone)
        call = Call(
            provider=provider,
            direction="out",
            client_id=client.id,
            phone=phone,
            requested=True,
            requested_user=user,
            awaiting_pbx=True,
            last_event=CallEventType.REQUESTED,
            created_at=now,
            updated_at=now,
        )
        session.add(call)
        await session.flush()
    assert call.id is not None and client.id is not None
    call_id, client_id = call.id, client.id

    try:
        pbx_callid = await dial(phone, user)
    except PbxError:
        async with db.session() as session:
            await session.exec(delete(Call).where(col(Call.id) == call_id))
        raise

    if pbx_callid:
        async with db.session() as session:
            await insert_or_ignore(
                session,
                CallRef,
                {"provider": provider, "external_id": pbx_callid, "call_id": call_id},
            )
            stored = await session.get(Call, call_id)
            if stored is not None and stored.callid is None:
                stored.callid = pbx_callid
                session.add(stored)
                call = stored
    await observer.call_updated(
        CallUpdate(call=call, client=client, trigger="requested", client_created=created)
    )
    return RequestedCall(call_id=call_id, client_id=client_id, phone=phone, pbx_callid=pbx_callid)


class ManagerCannotCall(CallRequestError):
    """The manager's settings forbid a PBX call (mode disabled or app, no PBX identity).

    `reason` is "disabled", "app" or "unbound", for the shell to word it for the manager.
    """

    def __init__(self, message: str, reason: str = "unbound") -> None:
        super().__init__(message)
        self.reason = reason


def pbx_identity(manager: Manager) -> str | None:
    """What the PBX accepts as `user`: login, else extension, else direct number.

    Novofon's callback `from` is an extension (or SIP / number) first: it has no logins.
    """
    if manager.call_provider == NOVOFON:
        return manager.pbx_ext or manager.pbx_telnum or manager.pbx_login
    return manager.pbx_login or manager.pbx_ext or manager.pbx_telnum


async def place_manager_call(
    db: Database,
    dialers: Dialers,
    manager: Manager,
    client_phone: str,
    observer: CallObserver,
) -> RequestedCall:
    """A manager's "call" button: the manager's PBX rings them, then the client."""
    if manager.call_mode != "api":
        reason = "app" if manager.call_mode == "app" else "disabled"
        raise ManagerCannotCall(f"call mode is {manager.call_mode!r}, not PBX API", reason)
    identity = pbx_identity(manager)
    if identity is None:
        raise ManagerCannotCall(
            "no PBX login, extension or number is bound to this manager", "unbound"
        )
    if manager.call_provider == PROVIDER:
        return await megafon_call(db, dialers.megafon, client_phone, identity, observer)
    if manager.call_provider == NOVOFON:
        return await novofon_call(db, dialers.novofon, client_phone, identity, observer)
    raise PbxError(f"calls through {manager.call_provider!r} are not supported")


@dataclass(frozen=True)
class Dialers:
    """The PBX clients calls can go through; None where a provider is not configured."""

    megafon: MegafonClient | None = None
    novofon: NovofonClient | None = None
