"""Managers: added and removed by admins, bound to a PBX identity and a call mode."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Client, Manager
from storage.types import utcnow

CallMode = Literal["disabled", "app", "api"]
CALL_MODES: tuple[CallMode, ...] = ("disabled", "app", "api")


async def manager_by_telegram(session: AsyncSession, telegram_user_id: int) -> Manager | None:
    return (
        await session.exec(select(Manager).where(Manager.telegram_user_id == telegram_user_id))
    ).first()


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


async def remove_manager(session: AsyncSession, telegram_user_id: int) -> bool:
    """Unbinds the Telegram account; a manager known to the PBX stays for the call history."""
    manager = await manager_by_telegram(session, telegram_user_id)
    if manager is None:
        return False
    if manager.pbx_login or manager.pbx_ext or manager.pbx_telnum:
        manager.telegram_user_id = None
        session.add(manager)
    else:
        await session.delete(manager)
    await session.flush()
    return True


async def bind_pbx(
    session: AsyncSession,
    manager: Manager,
    *,
    login: str | None = None,
    ext: str | None = None,
    telnum: str | None = None,
    name: str | None = None,
) -> Manager:
    """Bind a PBX identity. A row the PBX's calls already made for that login absorbs this one.

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
