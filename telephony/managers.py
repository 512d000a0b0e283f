"""Managers: added and removed by admins, bound to a PBX identity and a call mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Client, Manager
from storage.types import utcnow
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.providers.megafon import PROVIDER as MEGAFON
from telephony.providers.novofon import PROVIDER as NOVOFON

CallMode = Literal["disabled", "app", "api"]
CALL_MODES: tuple[CallMode, ...] = ("disabled", "app", "api")
PROVIDERS = (MEGAFON, NOVOFON)
_PROVIDER_WORDS = {
    "megafon": MEGAFON,
    "мегафон": MEGAFON,
    "novofon": NOVOFON,
    "новофон": NOVOFON,
    "zadarma": NOVOFON,
}


@dataclass(frozen=True)
class PbxIdentity:
    """Who a manager is on which PBX: a login (MegaFon only), an extension or a number."""

    provider: str
    login: str | None = None
    ext: str | None = None
    telnum: str | None = None

    @property
    def shown(self) -> str:
        return self.login or self.ext or self.telnum or ""


class ProviderNeeded(ValueError):
    """Both PBXs are configured and the input names none: ask which (`choices`)."""

    def __init__(self, raw: str, choices: Sequence[str]) -> None:
        super().__init__(f"which PBX is {raw!r} on: {' or '.join(choices)}?")
        self.raw = raw
        self.choices = tuple(choices)


def parse_pbx_identity(raw: str, configured: Sequence[str]) -> PbxIdentity:
    """`megafon andy`, `novofon 100`, or just `andy` / `100` when one PBX is configured.

    Raises ProviderNeeded when both are configured, the input names neither and could be on
    either (an extension or a number: a login can only be MegaFon's), ValueError for input no
    PBX accepts (empty, a login for Novofon, which has none).
    """
    words = raw.split()
    if not words:
        raise ValueError("give a PBX login, extension or number")
    provider = _PROVIDER_WORDS.get(words[0].lower())
    if provider is not None:
        words = words[1:]
        if not words:
            raise ValueError(f"give a login, extension or number after {provider}")
    given = " ".join(words)
    try:
        party: str | Extension | None = parse_party(given)
    except InvalidPhone:
        party = None  # a login: only MegaFon has them, so it names its PBX by itself
    if provider is None:
        if party is None and MEGAFON in configured:
            provider = MEGAFON
        elif len(configured) > 1:
            raise ProviderNeeded(given, [p for p in PROVIDERS if p in configured])
        else:
            provider = configured[0] if configured else MEGAFON
    if party is None:
        if provider == NOVOFON:
            raise ValueError("Novofon has no logins: give an extension (100) or a number") from None
        return PbxIdentity(provider, login=given)
    if isinstance(party, Extension):
        return PbxIdentity(provider, ext=party.number)
    return PbxIdentity(provider, telnum=party)


async def manager_by_telegram(session: AsyncSession, telegram_user_id: int) -> Manager | None:
    return (
        await session.exec(select(Manager).where(Manager.telegram_user_id == telegram_user_id))
    ).first()


async def all_managers(session: AsyncSession) -> list[Manager]:
    """Every manager, PBX-only rows made by calls included (the API lists them all)."""
    return list((await session.exec(select(Manager).order_by(col(Manager.id)))).all())


async def list_managers(session: AsyncSession) -> list[Manager]:
    """Managers bound to Telegram (PBX-only rows made by calls are not listed)."""
    query = (
        select(Manager).where(col(Manager.telegram_user_id).is_not(None)).order_by(col(Manager.id))
    )
    return list((await session.exec(query)).all())


async def add_manager(
    session: AsyncSession, telegram_user_id: int, name: str = ""
) -> tuple[Manager, bool]:
    """(manager, created). Adding someone who is already a manager changes nothing."""
    existing = await manager_by_telegram(session, telegram_user_id)
    if existing is not None:
        return existing, False
    manager = Manager(
        telegram_user_id=telegram_user_id, name=name or str(telegram_user_id), created_at=utcnow()
    )
    session.add(manager)
    await session.flush()
    return manager, True


async def add_pbx_manager(session: AsyncSession, name: str) -> Manager:
    """A manager without Telegram (the API): bound to a PBX identity next."""
    manager = Manager(name=name, created_at=utcnow())
    session.add(manager)
    await session.flush()
    return manager


async def remove_manager(session: AsyncSession, telegram_user_id: int) -> bool:
    """Unbinds the Telegram account; a manager known to the PBX stays for the call history."""
    manager = await manager_by_telegram(session, telegram_user_id)
    if manager is None:
        return False
    await retire_manager(session, manager)
    return True


async def retire_manager(session: AsyncSession, manager: Manager) -> None:
    """Unbind Telegram; delete the row unless the PBX knows it (its calls keep their manager)."""
    if manager.pbx_login or manager.pbx_ext or manager.pbx_telnum:
        manager.telegram_user_id = None
        session.add(manager)
    else:
        await session.delete(manager)
    await session.flush()


async def bind_pbx(
    session: AsyncSession,
    manager: Manager,
    *,
    login: str | None = None,
    ext: str | None = None,
    telnum: str | None = None,
    name: str | None = None,
    provider: str | None = None,
) -> Manager:
    """Bind a PBX identity on `provider` (the PBX the manager's calls then go through).
    A row the PBX's calls already made for that login absorbs this one.

    Calls create a manager row per PBX login (the responsible manager); binding the Telegram
    account to that row keeps the clients it is responsible for.
    """
    target = manager
    if login:
        pbx_row = (await session.exec(select(Manager).where(Manager.pbx_login == login))).first()
        if pbx_row is not None and pbx_row.id != manager.id:
            if pbx_row.telegram_user_id is not None:
                raise ValueError(f"PBX login {login!r} is bound to another manager")
            telegram_id, mode = manager.telegram_user_id, manager.call_mode
            await session.exec(
                update(Client)
                .where(col(Client.responsible_manager_id) == manager.id)
                .values(responsible_manager_id=pbx_row.id)
            )
            await session.delete(manager)
            await session.flush()
            pbx_row.telegram_user_id = telegram_id
            pbx_row.call_mode = mode
            if not pbx_row.name or pbx_row.name == login:
                pbx_row.name = manager.name  # the login says less than the person's name
            target = pbx_row
    target.pbx_login, target.pbx_ext, target.pbx_telnum = login, ext, telnum
    if provider is not None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown PBX {provider!r}: {' or '.join(PROVIDERS)}")
        target.call_provider = provider
    if name:
        target.name = name
    session.add(target)
    await session.flush()
    return target


async def set_call_mode(session: AsyncSession, manager: Manager, mode: CallMode) -> Manager:
    manager.call_mode = mode
    session.add(manager)
    await session.flush()
    return manager


async def bind_identity(
    session: AsyncSession, manager: Manager, identity: PbxIdentity, *, name: str | None = None
) -> Manager:
    return await bind_pbx(
        session,
        manager,
        login=identity.login,
        ext=identity.ext,
        telnum=identity.telnum,
        name=name,
        provider=identity.provider,
    )


async def set_on_duty(session: AsyncSession, manager: Manager, on_duty: bool) -> Manager:
    manager.on_duty = on_duty
    session.add(manager)
    await session.flush()
    return manager
