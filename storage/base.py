"""What every table module imports first: one naming convention on the one metadata.

Named constraints let later migrations (SQLite batch mode included) drop or alter them by name.
Table modules import this module and nothing else of storage's schema, so any of them imports
alone and the schema never depends on import order; `storage.schema` gathers them all.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import SQLModel

from storage.types import utcnow

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
METADATA = SQLModel.metadata
# A table model is written and read through SQLAlchemy; pydantic builds its validator only for
# `model_validate` and the like. Built on first use, not at import: 0.7 MB of every process.
SQLModel.model_config["defer_build"] = True


def created_now() -> datetime:
    """The default of every `created_at` / `updated_at` column."""
    return utcnow()
