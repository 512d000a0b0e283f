"""The one layer that reads request bodies, for every endpoint.

Whatever arrives — an unknown charset, bytes that are not in it, JSON nested a thousand levels
deep, a broken multipart part, a body over the limit — the answer is a clear 4xx (400, 413, 415)
and one log line, never a traceback and never a 5xx. Handlers get plain values: a JSON object,
or a flat mapping of form fields.
"""

from __future__ import annotations

import codecs
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from handlers.web.errors import JsonError

log = logging.getLogger(__name__)

# JSON objects we accept are flat or nearly so (a tracker visit, a site form, a Novofon event);
# 32 levels leave room for any real payload and stop a nesting bomb long before recursion does.
MAX_DEPTH = 32
MAX_FIELDS = 1000  # form fields in one body (a PBX push has about 15)
# Webhook bodies are small forms and JSON objects; anything larger is not a PBX or a site.
MAX_BODY_BYTES = 256 * 1024
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def _refuse(request: web.Request, status: int, error: str, **details: Any) -> JsonError:
    log.warning(
        "%s %s: %d %s %s", request.method, request.path, status, error, details.get("detail", "")
    )
    return JsonError(status, error, **details)


def _charset(request: web.Request) -> str:
    charset = request.charset or "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise _refuse(
            request, 415, "Unsupported charset", detail=f"{charset[:40]!r} is not a known charset"
        ) from None


async def read_text(request: web.Request, *, max_bytes: int | None = None) -> str:
    """The body decoded with its declared charset (UTF-8 when none)."""
    charset = _charset(request)
    limit = max_bytes or MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise _refuse(request, 413, "Body too large", detail=f"more than {limit} bytes")
    raw = await request.read()  # aiohttp answers 413 itself past client_max_size
    if len(raw) > limit:
        raise _refuse(request, 413, "Body too large", detail=f"more than {limit} bytes")
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise _refuse(
            request, 400, "Invalid parameters", detail=f"body is not valid {charset}"
        ) from None


def storable(text: str) -> bool:
    """Text a database can keep: no NUL (PostgreSQL refuses it) and no lone surrogate (which
    JSON's \\ud800 escapes can make, and which no encoder takes)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_problem(value: Any) -> str | None:
    """What makes a parsed JSON value unacceptable (walked without recursion), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return "text holds a NUL or an unpaired surrogate"
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return f"JSON nested deeper than {MAX_DEPTH}"
        stack.extend((child, depth + 1) for child in children)
    return None


def parse_json(request: web.Request, text: str) -> Any:
    try:
        body = json.loads(text)
    except RecursionError:
        raise _refuse(
            request, 400, "Invalid parameters", detail=f"JSON nested deeper than {MAX_DEPTH}"
        ) from None
    except ValueError:
        raise _refuse(request, 400, "Invalid parameters", detail="body is not valid JSON") from None
    problem = _json_problem(body)
    if problem is not None:
        raise _refuse(request, 400, "Invalid parameters", detail=problem)
    return body


async def read_json_object(
    request: web.Request, *, max_bytes: int | None = None
) -> dict[str, Any]:
    body = parse_json(request, await read_text(request, max_bytes=max_bytes))
    if not isinstance(body, dict):
        raise _refuse(request, 400, "Invalid parameters", detail="body must be a JSON object")
    return body


def _scalar(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise JsonError(400, "Invalid parameters", field=name, detail="must be a plain value")


async def _multipart(request: web.Request) -> dict[str, str]:
    """The text fields of a multipart form, read part by part (not `request.post()`: it spools
    file parts to temporary files and leaves them open when a later part is broken). A file
    part is refused as soon as it starts; the whole body stays within MAX_BODY_BYTES."""
    fields: dict[str, str] = {}
    budget = MAX_BODY_BYTES
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                raise ValueError("a nested or unnamed part")
            if part.filename:
                detail = "files are not accepted"
                raise _refuse(request, 400, "Invalid parameters", field=part.name, detail=detail)
            if len(fields) >= MAX_FIELDS:
                raise _refuse(
                    request, 400, "Invalid parameters", detail=f"more than {MAX_FIELDS} fields"
                )
            raw = bytearray()
            while chunk := await part.read_chunk():
                budget -= len(chunk)
                if budget < 0:
                    raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, MAX_BODY_BYTES - budget)
                raw.extend(chunk)
            data = part.decode(bytes(raw))
            charset = part.get_charset(default="utf-8")
            fields[part.name] = data.decode(charset)  # a repeated field: the last one
    except (web.HTTPException, JsonError):
        raise
    except Exception as exc:  # aiohttp's multipart reader raises many kinds on broken parts
        raise _refuse(
            request,
            400,
            "Invalid parameters",
            detail=f"body is not a valid multipart form ({exc.__class__.__name__})",
        ) from None
    return _checked(request, fields)


def _checked(request: web.Request, fields: dict[str, str]) -> dict[str, str]:
    for key, value in fields.items():
        if not (storable(key) and storable(value)):
            raise _refuse(
                request,
                400,
                "Invalid parameters",
                field=key[:64] if storable(key) else "?",
                detail="text holds a NUL or an unpaired surrogate",
            )
    return fields


async def read_fields(request: web.Request) -> dict[str, str]:
    """Form fields (the PBX's way) or a JSON object (accepted as a fallback), plus the query."""
    fields: dict[str, str] = _checked(request, dict(request.query))
    if not request.can_read_body:
        return fields
    if request.content_type == "application/json":
        body = await read_json_object(request)
        fields.update({str(key): _scalar(str(key), value) for key, value in body.items()})
        return fields
    if request.content_type == MULTIPART:
        fields.update(await _multipart(request))
        return fields
    fields.update(_checked(request, dict(await _urlencoded_pairs(request))))
    return fields


async def _urlencoded_pairs(request: web.Request) -> list[tuple[str, str]]:
    text = await read_text(request)
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding=_charset(request),
            errors="strict",
        )
    except UnicodeDecodeError:
        raise _refuse(
            request, 400, "Invalid parameters", detail="a field is not valid in its charset"
        ) from None
    except ValueError:
        raise _refuse(
            request, 400, "Invalid parameters", detail=f"more than {MAX_FIELDS} fields"
        ) from None


async def read_form_pairs(request: web.Request) -> list[tuple[str, str]]:
    """A form body as its fields in order, repeated names kept (PHP-style `data[]=…&data[]=…`);
    the query is not included."""
    if not request.can_read_body:
        return []
    if request.content_type == "application/json":
        raise _refuse(request, 400, "Invalid parameters", detail="expected a form, not JSON")
    if request.content_type == MULTIPART:
        return list((await _multipart(request)).items())
    pairs = await _urlencoded_pairs(request)
    for key, value in pairs:
        _checked(request, {key: value})
    return pairs
