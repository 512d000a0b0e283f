"""Every report table as CSV: the same rows the page shows, one header line of field names."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from aiohttp import web
from pydantic import BaseModel


def csv_response(rows: Sequence[BaseModel], name: str) -> web.Response:
    buffer = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        values = {
            key: value for key, value in row.model_dump().items() if not isinstance(value, dict)
        }
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(values), lineterminator="\r\n")
            writer.writeheader()
        writer.writerow(values)
    # A byte-order mark: Excel then reads the Cyrillic names as UTF-8.
    body = "\ufeff" + buffer.getvalue()
    return web.Response(
        body=body.encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}.csv"',
        },
    )
