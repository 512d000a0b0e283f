"""Checks `serve` makes before starting, so a wrong setting is one line naming it (exit 2)
instead of a traceback from deep inside the first query or the listener."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.settings import ConfigurationError
from storage.db import Database, is_sqlite

CONNECT_TIMEOUT = 10.0


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def check_sqlite_path(url: str) -> None:
    path = _sqlite_path(url)
    if path is None:
        return
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise ConfigurationError(f"TRUBKA_DATABASE_URL: {path} is not writable")
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigurationError(f"TRUBKA_DATABASE_URL: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"TRUBKA_DATABASE_URL: cannot create {path}: folder {folder} is not writable"
        )


def _open_sqlite(url: str) -> None:
    """Open the file with the standard library (aiosqlite's thread, failing on a closing loop,
    would print a traceback of its own)."""
    path = _sqlite_path(url)
    if path is None:
        return
    try:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise ConfigurationError(
            f"TRUBKA_DATABASE_URL: cannot use {_shown(url)}: {exc.__class__.__name__}: {exc}"
        ) from None


async def _ping(url: str) -> None:
    db = Database(url)
    try:
        await asyncio.wait_for(db.ping(), CONNECT_TIMEOUT)
    finally:
        await db.dispose()


def check_database(url: str) -> None:
    """The database answers `SELECT 1` (PostgreSQL: reachable, the database exists, the user
    may log in; SQLite: the file can be opened for writing)."""
    if is_sqlite(url):
        check_sqlite_path(url)
        _open_sqlite(url)
        return
    try:
        asyncio.run(_ping(url))
    except TimeoutError:
        raise ConfigurationError(
            f"TRUBKA_DATABASE_URL: no answer from {_shown(url)} in {CONNECT_TIMEOUT:.0f} s"
        ) from None
    except Exception as exc:
        # asyncpg's and sqlite's errors carry the useful part in their first line.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigurationError(
            f"TRUBKA_DATABASE_URL: cannot use {_shown(url)}: {exc.__class__.__name__}: {reason}"
        ) from None


def listening_socket(host: str, port: int, *, setting: str = "TRUBKA_HTTP_PORT") -> socket.socket:
    """Bind the HTTP listener ourselves, so a port in use is a configuration error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"TRUBKA_HTTP_HOST: cannot resolve {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"{setting}: cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock
