"""One client, many channels: the deep-link tokens, and migration 0015 moving today's
`clients.channel`/`external_id` into `client_channels` (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import text

from storage.db import Database
from storage.migrate import alembic_config
from telephony.channels.deeplink import TelegramLinks
from tests.postgres_admin import create_database, drop_database

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LINKS = TelegramLinks("trubka_bot", b"server-secret", ttl=timedelta(days=30))


def test_a_link_names_one_client_is_signed_short_and_expires() -> None:
    link = LINKS.link(123456789, NOW)
    prefix = "https://t.me/trubka_bot?start="
    assert link.startswith(prefix)
    token = link.removeprefix(prefix)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)  # what Telegram's `start` accepts
    assert LINKS.client_of(token, NOW) == 123456789
    assert LINKS.client_of(token, NOW + timedelta(days=29)) == 123456789
    assert LINKS.client_of(token, NOW + timedelta(days=32)) is None  # expired
    other = TelegramLinks("trubka_bot", b"another-secret")
    assert other.client_of(token, NOW) is None  # not signed by us
    body, _, signature = token.rpartition("-")
    forged = body.replace("c21i3v9", "c1", 1) + "-" + signature  # another client, same signature
    assert LINKS.client_of(forged, NOW) is None
    assert LINKS.client_of("promo2026", NOW) is None
    assert LINKS.client_of("", NOW) is None


async def _upgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def _database_url(backend: str, tmp_path: Path, postgres_url: str | None) -> str:
    if backend == "sqlite" or postgres_url is None:
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    return await create_database(postgres_url, postgres_url.rpartition("/")[2] + "_m15")


async def test_migration_0015_moves_messenger_clients_into_identities(
    tmp_path: Path, postgres_url: str
) -> None:
    for backend in ("sqlite", "postgresql"):
        url = await _database_url(backend, tmp_path, postgres_url)
        await _upgrade(url, "0014")
        db = Database(url)
        try:
            async with db.engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO clients (id, name, phone, channel, external_id, created_at,"
                        " updated_at) VALUES"
                        " (1, 'Аня', '79004443322', 'telegram', '5001', :at, :at),"
                        " (2, '', '79161112233', 'telephony', NULL, :at, :at)"
                    ),
                    {"at": NOW},
                )
                await connection.execute(
                    text(
                        "INSERT INTO dialog_messages (client_id, kind, direction, text, created_at)"
                        " VALUES (1, 'message', 'in', 'Здравствуйте', :at),"
                        " (1, 'message', 'out', 'Добрый день', :later)"
                    ),
                    {"at": NOW, "later": NOW + timedelta(minutes=5)},
                )
            await _upgrade(url, "head")
            async with db.engine.connect() as connection:
                rows = (
                    await connection.execute(
                        text(
                            "SELECT client_id, kind, address, last_incoming_at"
                            " FROM client_channels"
                        )
                    )
                ).all()
            assert len(rows) == 1, backend
            client_id, kind, address, last = rows[0]
            assert (client_id, kind, address) == (1, "telegram", "5001")
            assert last is not None  # the client's last incoming message
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0014")
            async with db.engine.connect() as connection:
                back = (
                    await connection.execute(
                        text("SELECT id, channel, external_id FROM clients ORDER BY id")
                    )
                ).all()
            assert [tuple(row) for row in back] == [(1, "telegram", "5001"), (2, "telephony", None)]
        finally:
            await db.dispose()
            if url.startswith("postgresql"):  # not left behind on the server after the run
                await drop_database(postgres_url, url.rpartition("/")[2])
