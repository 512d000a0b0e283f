"""PostgreSQL connections that the server dropped (a restart, a failover, an idle timeout).

A pooled connection idle for a while is pinged before it is handed out (storage/db.py); one used
a moment ago is not, so a push stored on it just after the server went away fails once and is
stored again on a new connection (telephony/calls/inbox.py): the PBX does not resend it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import storage.db
from storage.db import Database
from tests.conftest import AppClient, AppFactory
from tests.megafon_replay import push

TERMINATE_OTHERS = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


# PostgreSQL only: SQLite has no server to drop a connection.
pytestmark = pytest.mark.parametrize("any_db", ["postgresql"], indirect=True)


async def _drop_the_pool_s_connections(postgres_url: str) -> int:
    killer = Database(postgres_url)
    try:
        async with killer.engine.begin() as connection:
            return int((await connection.execute(TERMINATE_OTHERS)).scalar_one())
    finally:
        await killer.dispose()


def _incoming(n: int) -> dict[str, str]:
    return {
        "cmd": "event",
        "type": "INCOMING",
        "phone": f"7901555{n:04d}",
        "callid": f"DROPPED-{n}",
        "user": "andy",
        "ext": "701",
    }


async def _calls(client: AppClient, auth: dict[str, str]) -> int:
    response = await client.get("/api/v1/calls", headers=auth)
    assert response.status == 200, await response.text()
    return len((await response.json())["calls"])


async def test_a_push_stored_just_after_the_server_dropped_the_connections_is_kept(
    any_db: Database, postgres_url: str, make_client: AppFactory, auth: dict[str, str]
) -> None:
    client = await make_client(any_db)
    assert (await push(client, _incoming(1)))[0] == 200  # the pool's connections are in use
    assert await _drop_the_pool_s_connections(postgres_url) > 0

    status, _ = await push(client, _incoming(2))  # no ping: a used connection; stored again

    assert status == 200
    assert await _calls(client, auth) == 2


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    any_db: Database,
    postgres_url: str,
    make_client: AppFactory,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await make_client(any_db)
    assert (await push(client, _incoming(1)))[0] == 200
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE", 0.0)  # every pooled connection is idle
    assert await _drop_the_pool_s_connections(postgres_url) > 0

    assert await _calls(client, auth) == 1  # a read: pinged, replaced, answered
    assert (await push(client, _incoming(2)))[0] == 200
    assert await _calls(client, auth) == 2
