"""Requests read into pydantic models and answers written from them, for every `/api/v1` route.

The same models make the OpenAPI description (handlers/web/openapi.py), so what it promises is
what the handlers accept. A value the model refuses is a 400 `{"error", "field", "detail",
"problems"}` naming the first field at fault; the body itself (charset, depth, size) is checked
first by handlers/web/bodies.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from handlers.web.bodies import read_json_object
from handlers.web.errors import JsonError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# Error types whose answer says more than "Invalid parameters" (the custom types of
# handlers/web/api_models.py).
ERRORS = {"invalid_phone": "Invalid phone"}
MAX_ID = 2**31 - 1  # ids are INTEGER columns (PostgreSQL int4): past it, no row can exist


def invalid(request: web.Request, exc: ValidationError) -> JsonError:
    """The 400 for a refused model: the first problem named, all of them listed."""
    problems = [
        {"field": ".".join(str(part) for part in error["loc"]) or None, "detail": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    first = exc.errors(include_url=False)[0]
    error = ERRORS.get(first["type"], "Invalid parameters")
    log.warning(
        "%s %s: 400 %s %s: %s",
        request.method,
        request.path,
        error,
        problems[0]["field"],
        problems[0]["detail"],
    )
    return JsonError(400, error, **problems[0], problems=problems)


def validated(request: web.Request, model: type[M], values: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise invalid(request, exc) from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON object body as `model` (any content type is read as JSON, as before)."""
    return validated(request, model, await read_json_object(request))


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as `model`. An empty value counts as absent (`?phone=&limit=`); a
    parameter of the model given twice is refused (the description has no lists)."""
    names = {info.alias or name for name, info in model.model_fields.items()}
    values: dict[str, str] = {}
    for key in names & set(request.query):
        given = [value for value in request.query.getall(key) if value != ""]
        if len(given) > 1:
            raise JsonError(400, "Invalid parameters", field=key, detail="given more than once")
        if given:
            values[key] = given[0]
    return validated(request, model, values)


def parse_headers(request: web.Request, model: type[M]) -> M:
    """The headers a model names (by alias, matched case-insensitively) as `model`."""
    values = {}
    for name, info in model.model_fields.items():
        header = info.alias or name
        if header in request.headers:
            values[header] = request.headers[header]
    return validated(request, model, values)


def path_id(request: web.Request, name: str) -> int | None:
    """A row id from the path (the route's pattern makes it digits); None when no row can
    have it (0, or past the column's range): the caller answers 404."""
    digits = request.match_info[name].lstrip("0")
    if not digits or len(digits) > len(str(MAX_ID)):  # int() of 5000 digits is an error
        return None
    number = int(digits)
    return number if number <= MAX_ID else None


def answer(model: BaseModel, status: int = 200) -> web.Response:
    """The answer as its model serializes it (`model_dump(mode="json")`, written as JSON)."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )
