"""`among(column, values)`: `column IN (values)`, as one statement whatever their number.

SQLAlchemy sends `IN` with one parameter per value, so every number of values is a statement
of its own. On PostgreSQL each such statement is prepared and kept by every connection that
ran it (asyncpg's cache and SQLAlchemy's, ~23 KB a statement): the applier's set-wise slices
(1 to 200 pushes) made dozens of them per query, megabytes of `serve`, and a round trip to
prepare each. There it is sent as `column = ANY(:values)`, one array parameter. SQLite has no
arrays: `IN` as before (it prepares nothing across statements).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType


class Among(ColumnElement[bool]):
    """Both forms of the test, built once; a statement compiles the one its database takes
    (the other's parameter is not in the statement)."""

    __visit_name__ = "among"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (as SQLAlchemy's own)
        ("listed", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: no `= 1` after it where booleans are ints

    def __init__(self, column: ColumnElement[Any], name: str | None, values: list[Any]) -> None:
        self.listed: ColumnElement[bool] = column.in_(bindparam(name, values, expanding=True))
        self.array: ColumnElement[bool] = column == any_(
            bindparam(name, values, type_=ARRAY(column.type))
        )


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:values)`."""
    return Among(column, None, list(values))


def among_param(column: Any, name: str) -> ColumnElement[bool]:
    """`column IN (:name)` of a statement built once, the values given when it runs
    (`{name: [...]}`); on PostgreSQL `column = ANY(:name)`."""
    return Among(column, name, [])


@compiles(Among)
def _listed(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.listed, **kw)


@compiles(Among, "postgresql")
def _array(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.array, **kw)
