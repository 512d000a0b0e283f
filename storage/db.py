"""The async engine and session factory, the same code for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import sqlite_hop
from storage.inbox_spool import Spool

# How many database sessions the current task holds open. The house rule: no network await
# (PBX, Telegram, Roistat, Metrika, Novofon) while one is open — on SQLite a transaction holds
# the single write lock, so one slow upstream would stall every webhook. Upstream clients ask
# `session_open()` before each request (telephony/infra/http.py, the Telegram session middleware).
_open_sessions: ContextVar[int] = ContextVar("trubka_open_sessions", default=0)


def session_open() -> bool:
    return _open_sessions.get() > 0


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


BUSY_TIMEOUT_MS = 10_000


def is_memory(url: str) -> bool:
    return ":memory:" in url or "mode=memory" in url


# The page cache of each SQLite connection (KiB): the writer, the read pool's four and the
# landing file's two. SQLite's default, 2,000 KiB each, fills under load and stays: with 256 KiB
# `serve`'s peak is about 2 MB lower. The OS caches the file, so a page outside the cache costs
# a read from memory: reports and applying took as long (docs/performance.md).
CACHE_KIB = 256


def _tune_sqlite(engine: AsyncEngine, *, read_only: bool = False) -> None:
    """WAL, foreign keys, and write transactions that take the lock up front.

    `BEGIN IMMEDIATE` avoids the read-then-write upgrade that SQLite answers with SQLITE_BUSY
    when another process (a CLI next to `serve`) wrote in between. The read engine's
    transactions begin deferred: in WAL mode they read a snapshot and never wait for a writer.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # First, so that everything after it (switching to WAL takes a lock) waits for another
        # process that opens the same new file at the same moment instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # An answered push is on disk, not only in the WAL's OS buffers: a power cut after our
        # 200 loses nothing. Group commit keeps the cost to one fsync per batch of pushes.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
            # Reports sort and count distinct values in temporary b-trees: a year of callers
            # spills out of the page cache into a temporary file (1.3 → 0.5 s) unless kept in
            # memory (a few megabytes, for the length of the query).
            cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # `Database.autocommit()`: every statement on its own, as asked. A BEGIN here made its
        # writes part of a transaction that the pool then rolled back.
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql(begin)


def create_read_engine(url: str, **kwargs: Any) -> AsyncEngine | None:
    """SQLite: a second pool for reads (WAL readers run beside the one writer). None when the
    main engine should serve reads too (PostgreSQL, an in-memory database)."""
    if not is_sqlite(url) or is_memory(url):
        return None
    engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=60, **kwargs)
    _tune_sqlite(engine, read_only=True)
    return engine


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if is_sqlite(url):
        sqlite_hop.install()
        # SQLite has one writer at a time; one pooled connection queues requests in asyncio
        # instead of in SQLite's sleeping busy handler.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, **kwargs)
        _tune_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        connect_args={"prepared_statement_cache_size": PREPARED_STATEMENTS},
        **kwargs,
    )
    _ping_after_idle(engine)
    return engine


# Prepared statements each PostgreSQL connection keeps (SQLAlchemy's default: 100). A statement
# kept costs memory on every connection that ran it, and SQLAlchemy sends a multi-row
# `INSERT … RETURNING` as a statement per number of rows: under load every connection filled its
# 100 with them, `serve`'s peak RSS 3-4 MB higher. The hot paths use fewer than 40 statements
# (lists of values are one statement each: storage/among.py); one evicted is prepared again.
PREPARED_STATEMENTS = 40

# A pooled PostgreSQL connection unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 5.0  # seconds


def _ping_after_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's `pool_pre_ping`, for connections that sat idle only. asyncpg's ping is three
    round trips (BEGIN, a query, ROLLBACK); pinging at every checkout put the p99 of 300
    pushes/s at 13 ms, 8-9 ms without (docs/performance.md). A connection just used is alive
    unless the server went away this moment, and then the statement fails as a ping would
    have: the pool is invalidated, and writing pushes retries once (telephony/calls/inbox.py)."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool drops it and checks out another (up to 3 times)
            raise DisconnectionError(f"idle connection is gone: {exc}") from exc


class Database:
    """Owns the engine; hands out sessions whose transaction commits on success."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self.read_engine = create_read_engine(url, **engine_kwargs)
        self._reads = (
            async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)
            if self.read_engine is not None
            else self._sessions
        )
        # SQLite: where the inbox lands first (storing does not wait for the main writer).
        self.spool = Spool.for_database(url, BUSY_TIMEOUT_MS, CACHE_KIB)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block ends normally, rolled back otherwise.

        Keep it short and never wait on the network inside it (see `session_open`)."""
        token = _open_sessions.set(_open_sessions.get() + 1)
        try:
            async with self._sessions() as session, session.begin():
                yield session
        finally:
            _open_sessions.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work: takes no write lock and does not wait for the writer
        (SQLite: its own connections, a snapshot per transaction). Never write in it; the
        no-network rule of `session()` holds here too."""
        token = _open_sessions.set(_open_sessions.get() + 1)
        try:
            async with self._reads() as session, session.begin():
                yield session
        finally:
            _open_sessions.reset(token)

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """`read()` without the ORM: a Core connection in a read transaction, for the hot read
        paths (prebuilt statements; a session's bookkeeping costs more than the query)."""
        engine = self.read_engine or self.engine
        token = _open_sessions.set(_open_sessions.get() + 1)
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            _open_sessions.reset(token)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection whose every statement commits on its own: one statement, one
        round trip (no BEGIN and COMMIT around it). For a write that is one statement; the
        no-network rule of `session()` holds here too."""
        token = _open_sessions.set(_open_sessions.get() + 1)
        try:
            async with self.engine.connect() as connection:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")
        finally:
            _open_sessions.reset(token)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()
        if self.spool is not None:
            await self.spool.dispose()
