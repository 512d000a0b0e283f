"""Looking managers up by PBX login on the apply path, where every push of a call asks."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.models import Manager

_BY_LOGIN = select(Manager).where(col(Manager.pbx_login) == bindparam("login"))
_BY_LOGINS = select(Manager).where(among_param(col(Manager.pbx_login), "logins"))
_SEEN = "trubka.managers_by_login"


async def manager_by_login(session: AsyncSession, login: str) -> Manager | None:
    """The manager with this PBX login. A found one is remembered for the rest of the
    session's transaction (a slice of the call inbox asks once, not once per push); a miss is
    not, so a manager inserted meanwhile is found."""
    seen: dict[str, Manager] = session.info.setdefault(_SEEN, {})
    manager = seen.get(login)
    if manager is None:
        manager = (await session.exec(_BY_LOGIN, params={"login": login})).first()
        if manager is not None:
            seen[login] = manager
    return manager


def remember_managers(session: AsyncSession, managers: Iterable[Manager]) -> None:
    """Managers read by login elsewhere in this transaction (the set-wise apply path's)."""
    seen: dict[str, Manager] = session.info.setdefault(_SEEN, {})
    for manager in managers:
        if manager.pbx_login is not None:
            seen[manager.pbx_login] = manager


async def managers_by_login(session: AsyncSession, logins: Iterable[str]) -> dict[str, Manager]:
    """`manager_by_login` for several logins in one query (those remembered are not asked);
    the ones found, remembered as `manager_by_login` remembers them."""
    seen: dict[str, Manager] = session.info.setdefault(_SEEN, {})
    missing = sorted({login for login in logins if login and login not in seen})
    if missing:
        rows = await session.exec(_BY_LOGINS, params={"logins": missing})
        for manager in rows.all():
            if manager.pbx_login is not None and manager.pbx_login not in seen:
                seen[manager.pbx_login] = manager
    return {login: seen[login] for login in logins if login in seen}
