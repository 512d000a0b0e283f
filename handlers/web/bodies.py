"""Reading request bodies: form or JSON, always into a flat mapping of strings."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from handlers.web.errors import JsonError


def _scalar(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise JsonError(400, "Invalid parameters", field=name, detail="must be a plain value")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise JsonError(400, "Invalid parameters", detail="body is not valid JSON") from None
    if not isinstance(body, dict):
        raise JsonError(400, "Invalid parameters", detail="body must be a JSON object")
    return body


async def read_fields(request: web.Request) -> dict[str, str]:
    """Form fields (the PBX's way) or a JSON object (accepted as a fallback), plus the query."""
    fields: dict[str, str] = dict(request.query)
    if not request.can_read_body:
        return fields
    if request.content_type == "application/json":
        body = await read_json_object(request)
        fields.update({str(key): _scalar(str(key), value) for key, value in body.items()})
        return fields
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise JsonError(400, "Invalid parameters", detail="body is not a form") from None
    for key, value in form.items():
        if not isinstance(value, str):
            raise JsonError(400, "Invalid parameters", field=key, detail="files are not accepted")
        fields[key] = value
    return fields
