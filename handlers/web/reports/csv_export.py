"""Every report table as CSV: the same rows the page shows, one header line of field names."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested figures (a pool's recommendation) become `recommendation_numbers` … columns."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}_"))
        else:
            flat[prefix + key] = value
    return flat


def csv_response(rows: Sequence[BaseModel], name: str) -> web.Response:
    flat = [_flat(row.model_dump(mode="json")) for row in rows]
    columns: dict[str, None] = {}
    for values in flat:
        columns.update(dict.fromkeys(values))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(flat)
    # A byte-order mark: Excel then reads the Cyrillic names as UTF-8.
    body = "\ufeff" + buffer.getvalue()
    return web.Response(
        body=body.encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}.csv"',
        },
    )
