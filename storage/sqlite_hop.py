"""One thread hop per SQLite statement instead of three or four.

aiosqlite runs each sqlite3 call in its own thread; SQLAlchemy's adapter makes a cursor, executes,
fetches and closes it as four separate calls, each a round trip between the event loop and that
thread (a future, a wake-up of the loop). On a busy machine those hops, not SQLite, were most of
the time an applied push took. This cursor does the four steps in one function in the thread.

It replaces the adapter's cursor class (SQLAlchemy's asyncio connector); if that internal shape
changes, `install()` leaves the stock cursor in place and says so in the log.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

log = logging.getLogger(__name__)

_installed = False


def install() -> bool:
    """Use the one-hop cursor for every aiosqlite connection of this process."""
    global _installed
    if _installed:
        return True
    try:
        from sqlalchemy.dialects.sqlite.aiosqlite import (
            AsyncAdapt_aiosqlite_connection,
            AsyncAdapt_aiosqlite_cursor,
        )
        from sqlalchemy.util import EMPTY_DICT
        from sqlalchemy.util.concurrency import await_
    except ImportError:  # pragma: no cover - another SQLAlchemy layout
        log.warning("SQLite: SQLAlchemy's aiosqlite adapter moved; using its own cursor")
        return False
    base_slots = set(getattr(AsyncAdapt_aiosqlite_cursor, "__slots__", ())) | set(
        getattr(AsyncAdapt_aiosqlite_cursor.__mro__[1], "__slots__", ())
    )
    if not {"_adapt_connection", "_connection", "_rows"} <= base_slots:  # pragma: no cover
        log.warning("SQLite: SQLAlchemy's aiosqlite cursor changed; using its own cursor")
        return False

    class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
        __slots__ = ("_description", "_lastrowid", "_rowcount", "_size")

        def __init__(self, adapt_connection: Any) -> None:
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection  # the aiosqlite connection
            self._cursor = None  # type: ignore[assignment]  # no aiosqlite cursor is kept
            self._soft_closed_memoized = EMPTY_DICT
            self._rows: collections.deque[Any] = collections.deque()
            self._description: Any = None
            self._rowcount = -1
            self._lastrowid: int | None = None
            self._size = 1

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> Any:
            return self._lastrowid

        @property
        def arraysize(self) -> int:
            return self._size

        @arraysize.setter
        def arraysize(self, value: int) -> None:
            self._size = value

        async def _async_soft_close(self) -> None:
            return None  # nothing is open between statements

        def close(self) -> None:
            self._rows.clear()

        def execute(self, operation: Any, parameters: Any = None) -> Any:
            try:
                return await_(self._run(operation, parameters, many=False))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
            try:
                return await_(self._run(operation, seq_of_parameters, many=True))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
            connection = self._connection

            def work() -> tuple[Any, Any, int, Any]:
                cursor = connection._conn.cursor()
                try:
                    if many:
                        cursor.executemany(operation, parameters)
                    elif parameters is None:
                        cursor.execute(operation)
                    else:
                        cursor.execute(operation, parameters)
                    description = cursor.description
                    rows = cursor.fetchall() if description else None
                    return description, rows, cursor.rowcount, cursor.lastrowid
                finally:
                    cursor.close()

            async with self._adapt_connection._execute_mutex:
                description, rows, rowcount, lastrowid = await connection._execute(work)
            self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
            self._rows = collections.deque(rows or ())

    AsyncAdapt_aiosqlite_connection._cursor_cls = OneHopCursor
    _installed = True
    return True
