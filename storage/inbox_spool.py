"""SQLite only: the inbox's landing file, so that answering a push never waits for applying.

SQLite has one writer per database file. With the inbox table in the main file, the webhook's
group commit waited for the applier's slice (which holds the writer for its whole transaction):
a PBX's push was answered a slice later, 25–100 ms at 300 events/s. Pushes now land in a file
of their own (`trubka.db` → `trubka.inbox.db`), with its own writer, and are answered once that
commit is on disk. The applier moves them into `call_events` inside its slice's transaction
(telephony/calls/inbox.py), and forgets them here after that commit.

Nothing is lost or applied twice: a push is in this file until the transaction that copies it
into `call_events` has committed; a crash between that commit and the forgetting leaves a copy
here, and copying it again is ignored by the inbox's dedup key (provider, dedup_key).
PostgreSQL needs no spool: its writers do not wait for each other.

Plain `sqlite3` on one thread of its own, not the async engine: a batch is stored, committed
and checked against `call_events` in one hop to that thread (the async engine's hops each
waited for a busy event loop: 3–5 ms a batch). The file holds one table, created on first use
outside Alembic: it is a transit area, empty whenever the applier has caught up.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from storage.outcome import Lane

T = TypeVar("T")

# The columns `call_events` takes over as they are, in this order.
INBOX_COLUMNS = (
    "provider",
    "dedup_key",
    "command",
    "event_type",
    "payload",
    "received_at",
    "lane",
    "call_key",
)
_CREATE = """
CREATE TABLE IF NOT EXISTS spooled_pushes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: "forget up to id N" is exact
    provider TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    command TEXT NOT NULL,
    event_type TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,  -- ISO 8601 with its offset
    lane INTEGER NOT NULL,
    call_key TEXT,
    late_end INTEGER NOT NULL,  -- its call ended long ago: the call's live pushes are history
    UNIQUE (provider, dedup_key)
)
"""
# A late outcome moves its call's spooled live pushes to history (`store`): found through this
# index, not by scanning the file. A PBX replaying its history sends nothing but late outcomes,
# and each scanned every spooled push: quadratic in the backlog. Live rows only, so a history
# push (most of a replay) costs the index nothing.
_LIVE_CALLS = f"""
CREATE INDEX IF NOT EXISTS spooled_live_calls ON spooled_pushes (call_key)
WHERE lane = {int(Lane.LIVE)}
"""
# The lanes are literals, not parameters: only then may SQLite use the partial index.
_DEMOTE = (
    f"UPDATE spooled_pushes SET lane = {int(Lane.HISTORY)}"
    f" WHERE call_key = ? AND lane = {int(Lane.LIVE)}"
)
_STORE = (
    "INSERT INTO spooled_pushes (provider, dedup_key, command, event_type, payload,"
    " received_at, lane, call_key, late_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (provider, dedup_key) DO NOTHING RETURNING provider, dedup_key"
)
_COLUMNS = ", ".join(("id", *INBOX_COLUMNS, "late_end"))


@dataclass(frozen=True)
class Spooled:
    """A landed push: its spool id, its `call_events` values, and its late-outcome flag."""

    id: int
    values: dict[str, Any]
    late_end: bool

    @property
    def call_key(self) -> str | None:
        key: str | None = self.values["call_key"]
        return key


def spool_url(url: str) -> str | None:
    """The landing file's URL for a SQLite database file (None: PostgreSQL, in memory)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if "mode=memory" in url:
        return None
    stem, dot, suffix = database.rpartition(".")
    if not dot or "/" in suffix:
        return parsed.set(database=f"{database}.inbox").render_as_string(hide_password=False)
    return parsed.set(database=f"{stem}.inbox.{suffix}").render_as_string(hide_password=False)


class Spool:
    """Pushes stored and answered, not yet in `call_events`. Its own file, so storing never
    waits for the main database's writer; one thread, so its calls never run at once."""

    def __init__(self, path: str, main_path: str, busy_timeout_ms: int, cache_kib: int) -> None:
        self._path = path
        self._main_path = main_path
        self._busy_timeout = busy_timeout_ms / 1000
        self._cache_kib = cache_kib  # each connection's page cache (storage/db.py)
        self._thread: ThreadPoolExecutor | None = None
        self._spool: sqlite3.Connection | None = None
        self._main: sqlite3.Connection | None = None

    @classmethod
    def for_database(cls, url: str, busy_timeout_ms: int, cache_kib: int) -> Spool | None:
        landing = spool_url(url)
        if landing is None:
            return None
        database = make_url(url).database or ""
        return cls(make_url(landing).database or "", database, busy_timeout_ms, cache_kib)

    async def _run(self, work: Callable[[], T]) -> T:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-spool")
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _connection(self) -> sqlite3.Connection:
        """The spool's connection (on the spool's thread), opened and its table made once."""
        if self._spool is None:
            connection = sqlite3.connect(
                self._path, timeout=self._busy_timeout, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            # An answered push is on disk, not only in the OS's buffers (as the main file).
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA cache_size=-{self._cache_kib}")
            connection.execute(_CREATE)
            connection.execute(_LIVE_CALLS)
            self._spool = connection
        return self._spool

    def _main_reader(self) -> sqlite3.Connection:
        """A read-only connection to the main file: which pushes moved on already."""
        if self._main is None:
            self._main = sqlite3.connect(
                f"{Path(self._main_path).absolute().as_uri()}?mode=ro",
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
            )
            self._main.execute(f"PRAGMA cache_size=-{self._cache_kib}")
        return self._main

    async def store(
        self, rows: Sequence[dict[str, Any]], late: Collection[tuple[str, str]] = ()
    ) -> set[tuple[str, str]]:
        """Store `rows` (`call_events` values) in one transaction and commit; the keys
        (provider, dedup_key) of the pushes that are new: neither spooled already nor moved on
        into `call_events`. The spooled live pushes of the calls of `late` rows (a late
        outcome: telephony/calls/lanes.py) go to history in the same commit."""
        params = [
            (
                *(_stored(row[name]) for name in INBOX_COLUMNS),
                int((row["provider"], row["dedup_key"]) in late),
            )
            for row in rows
        ]
        ended = sorted(
            {
                row["call_key"]
                for row in rows
                if row["call_key"] and (row["provider"], row["dedup_key"]) in late
            }
        )

        def work() -> set[tuple[str, str]]:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                new = set()
                for values in params:  # RETURNING answers per row
                    new.update(connection.execute(_STORE, values).fetchall())
                for key in ended:
                    connection.execute(_DEMOTE, (key,))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return {(p, k) for p, k in new} - self._moved_on(new)

        return await self._run(work)

    def _moved_on(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        by_provider: dict[str, list[str]] = {}
        for provider, key in keys:
            by_provider.setdefault(provider, []).append(key)
        found: set[tuple[str, str]] = set()
        try:
            for provider, dedup_keys in by_provider.items():  # the dedup index: provider first
                marks = ", ".join("?" for _ in dedup_keys)
                found.update(
                    self._main_reader().execute(
                        "SELECT provider, dedup_key FROM call_events"
                        f" WHERE provider = ? AND dedup_key IN ({marks})",
                        (provider, *dedup_keys),
                    )
                )
        except sqlite3.OperationalError:  # no main file or table yet: nothing moved on
            return set()
        return found

    async def oldest(self, limit: int, *, after: int = 0) -> list[Spooled]:
        """The oldest spooled pushes (past id `after`), in the order they were stored."""

        def work() -> list[Spooled]:
            found = self._connection().execute(
                f"SELECT {_COLUMNS} FROM spooled_pushes WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
            return [_spooled(row) for row in found]

        return await self._run(work)

    async def forget(self, up_to: int) -> None:
        """Drop what was moved into `call_events` (ids up to `up_to`, all of them moved)."""
        await self._run(
            lambda: self._connection().execute("DELETE FROM spooled_pushes WHERE id <= ?", (up_to,))
        )

    async def lanes(self) -> dict[int, int]:
        """Spooled pushes per lane (the inbox's backlog counts them)."""

        def work() -> dict[int, int]:
            found = self._connection().execute(
                "SELECT lane, count(*) FROM spooled_pushes GROUP BY lane"
            )
            return {int(lane): int(count) for lane, count in found}

        return await self._run(work)

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many pushes are spooled, and when the oldest was received."""

        def work() -> tuple[int, datetime | None]:
            count, first = self._connection().execute(
                "SELECT count(*), (SELECT received_at FROM spooled_pushes ORDER BY id LIMIT 1)"
                " FROM spooled_pushes"
            ).fetchone()
            return int(count), datetime.fromisoformat(first) if first else None

        return await self._run(work)

    async def dispose(self) -> None:
        """Close the connections and end the thread (a later call starts them again)."""
        if self._thread is None:
            return

        def work() -> None:
            for connection in (self._spool, self._main):
                if connection is not None:
                    connection.close()
            self._spool = self._main = None

        await self._run(work)
        self._thread.shutdown()
        self._thread = None


def inbox_rows(spooled: Sequence[Spooled]) -> list[dict[str, Any]]:
    """Landed pushes as `call_events` rows."""
    return [each.values for each in spooled]


def _stored(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _spooled(row: tuple[Any, ...]) -> Spooled:
    values = dict(zip(INBOX_COLUMNS, row[1:-1], strict=True))
    values["received_at"] = datetime.fromisoformat(values["received_at"])
    return Spooled(int(row[0]), values, bool(row[-1]))
