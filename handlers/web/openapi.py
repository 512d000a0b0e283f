"""The OpenAPI description of `/api/v1`, made from the handlers' own pydantic models.

A handler says what it takes and answers with `@operation(...)` under its route decorator:

    @routes.post(API + "/managers")
    @operation("Add a manager", body=ManagerIn, answers={201: ManagerOut, 400: None})
    async def add_manager(request: web.Request) -> web.Response: ...

`answers` maps a status to its model; `None` means the common error body (a 204 has none);
`media` is the content type of the 2xx answers. Path ids are 64-bit integers from 1; query
and header parameters come from `query=` / `headers=` models. `build_spec(app)`
walks the app's routes, so a route without `@operation` shows up in `undescribed(app)` (a test
keeps that list empty). `GET /api/v1/openapi.json` serves the spec and `GET /api/v1/docs` a
page rendered from it (no script, no CDN); both need no token.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from handlers.web.api_models import ROW_ID, ErrorAnswer, OpenApiDocument
from handlers.web.scopes import scope_of

API = "/api/v1"
SPEC_PATH = API + "/openapi.json"
DOCS_PATH = API + "/docs"
PUBLIC_PATHS = frozenset({SPEC_PATH, DOCS_PATH})
_ATTRIBUTE = "__trubka_operation__"
_REF = "#/components/schemas/{model}"
JSON = "application/json"
TEXT = "text/plain"

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    answers: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    description: str = ""
    tag: str = ""
    public: bool = False  # no bearer token needed
    headers: type[BaseModel] | None = None
    media: str = JSON


def operation(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    answers: Mapping[int, type[BaseModel] | None],
    description: str = "",
    tag: str = "",
    public: bool = False,
    headers: type[BaseModel] | None = None,
    media: str = JSON,
) -> Callable[[Handler], Handler]:
    """Describe a handler for the OpenAPI spec; it is returned unchanged."""
    described = Operation(
        summary, body, query, dict(answers), description, tag, public, headers, media
    )

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ATTRIBUTE, described)
        return handler

    return mark


def described(handler: object) -> Operation | None:
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI form: /api/v1/calls/{call_id}
    integer_params: frozenset[str]
    operation: Operation | None


def api_routes(app: web.Application) -> list[Route]:
    """Every `/api/v1` route of the app (HEAD, added by aiohttp for GETs, left out)."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path or not str(path).startswith(API + "/") or route.method == "HEAD":
            continue
        pattern = info.get("pattern")
        integers = frozenset(
            re.findall(r"\(\?P<(\w+)>\\d\+\)", pattern.pattern) if pattern is not None else []
        )
        found.append(Route(route.method, str(path), integers, described(route.handler)))
    return found


def undescribed(app: web.Application) -> list[str]:
    return [f"{r.method} {r.path}" for r in api_routes(app) if r.operation is None]


def _schemas(models: set[type[BaseModel]]) -> dict[str, Any]:
    pairs = [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)]
    _, top = models_json_schema(pairs, ref_template=_REF)  # type: ignore[arg-type]
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: no title, no null (an absent parameter is how to say none)."""
    schema.pop("title", None)
    if schema.get("default", 0) is None:
        del schema["default"]
    choices = schema.get("anyOf")
    if choices is not None:
        kept = [choice for choice in choices if choice != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema = {**kept[0], **schema}
        else:
            schema["anyOf"] = kept
    return schema


def _model_parameters(model: type[BaseModel], place: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": place, "required": name in required}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        if place == "query" and name not in required:
            parameter["allowEmptyValue"] = True  # `?phone=` is the same as no phone
        parameter["schema"] = _plain(prop)
        parameters.append(parameter)
    return parameters


def _parameters(route: Route, op: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            # An id past the columns' range is a row that cannot exist: 404, not 400.
            "schema": dict(ROW_ID) if name in route.integer_params else {"type": "string"},
        }
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    if op.query is not None:
        parameters += _model_parameters(op.query, "query")
    if op.headers is not None:
        parameters += _model_parameters(op.headers, "header")
    return parameters


def _content(op: Operation, status: int, model: type[BaseModel] | None) -> dict[str, Any]:
    if 200 <= status < 300 and op.media != JSON:
        return {op.media: {"schema": {"type": "string"}}}
    content: dict[str, Any] = {JSON: {"schema": _ref(model or ErrorAnswer)}}
    if status == 400 and op.query is not None:
        # A request line past aiohttp's 8190 bytes (a long query) is refused by the HTTP server
        # itself, before any handler, in plain text.
        content[TEXT] = {"schema": {"type": "string"}}
    return content


def build_spec(app: web.Application, *, version: str = "1") -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorAnswer}
    paths: dict[str, dict[str, Any]] = {}
    for route in api_routes(app):
        op = route.operation
        if op is None:
            continue
        item: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(route)}
        if op.description:
            item["description"] = op.description
        if op.tag:
            item["tags"] = [op.tag]
        if op.public:
            item["security"] = []
        scope = scope_of(route.method, route.path) or ("" if op.public else "admin")
        if scope:  # OpenAPI 3.1: a bearer scheme may name the roles it needs
            item["security"] = [{"bearer": [scope]}]
            item["x-scope"] = scope
            item["description"] = f"Scope: `{scope}` (or `admin`). {op.description}".strip()
        if parameters := _parameters(route, op):
            item["parameters"] = parameters
        if op.body is not None:
            models.add(op.body)
            item["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": _ref(op.body)}},
            }
        responses: dict[str, Any] = {}
        for status, model in sorted(op.answers.items()):
            response: dict[str, Any] = {"description": _STATUS.get(status, "answer")}
            if status != 204:
                response["content"] = _content(op, status, model)
                if JSON in response["content"]:
                    models.add(model or ErrorAnswer)
            responses[str(status)] = response
        if not op.public:
            responses.setdefault(
                "401",
                {
                    "description": "no or wrong bearer token",
                    "content": {"application/json": {"schema": _ref(ErrorAnswer)}},
                },
            )
            responses.setdefault(
                "403",
                {
                    "description": f"the token lacks the scope {scope}",
                    "content": {"application/json": {"schema": _ref(ErrorAnswer)}},
                },
            )
        item["responses"] = responses
        paths.setdefault(route.path, {})[route.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Trubka API",
            "version": version,
            "description": "Scripts and sites: calls, clients, dialogs, leads. "
            "Authorization: Bearer <token> (TRUBKA_API_TOKEN or a named token from "
            "`trubka token create`); each operation names the scope it needs.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation_id(route: Route) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", route.path[len(API) :].lower()).strip("_")
    return f"{route.method.lower()}_{words}"


_STATUS = {
    200: "OK",
    201: "created",
    400: "bad input (the field is named; a request line over 8 KB: plain text)",
    204: "done, nothing to show",
    401: "no or wrong bearer token",
    404: "not found",
    409: "conflict",
    502: "the upstream (PBX) refused; its message inside",
    503: "not configured (the missing settings are named)",
}


class SpecCache:
    """Built on first request, when every route is added (the app is frozen by then)."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None


SPEC = web.AppKey("trubka_openapi", SpecCache)


def _spec_of(request: web.Request) -> dict[str, Any]:
    cache = request.app[SPEC]
    if cache.spec is None:
        cache.spec = build_spec(request.app)
    return cache.spec


routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app[SPEC] = SpecCache()
    app.add_routes(routes)


@routes.get(SPEC_PATH)
@operation(
    "This description (OpenAPI 3.1)", answers={200: OpenApiDocument}, public=True, tag="meta"
)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(_spec_of(request))


@routes.get(DOCS_PATH)
@operation(
    "A readable page of this description",
    answers={200: None},
    public=True,
    tag="meta",
    media="text/html",
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=render_docs(_spec_of(request)), content_type="text/html")


def _schema_text(schema: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f'<a href="#{html.escape(name)}">{html.escape(name)}</a>'
    return html.escape(json.dumps(schema, ensure_ascii=False))


def _answer_text(answer: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    content = answer.get("content")
    if not content:
        return "(no body)"
    media, described = next(iter(content.items()))
    if media != JSON:
        return f"<code>{html.escape(media)}</code>"
    return _schema_text(described["schema"], spec)


def render_docs(spec: Mapping[str, Any]) -> str:
    """The spec as one self-contained HTML page: operations, then schemas."""
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        f"<title>{html.escape(spec['info']['title'])}</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;"
        "padding:0 1em}code,pre{background:#f4f4f4;padding:0 .2em}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style>",
        f"<h1>{html.escape(spec['info']['title'])}</h1>",
        f"<p>{html.escape(spec['info']['description'])} "
        f'Machine-readable: <a href="{SPEC_PATH}"><code>{SPEC_PATH}</code></a>.</p>',
    ]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(
                f"<h2 id={html.escape(op['operationId'])}><code>{method.upper()} "
                f"{html.escape(path)}</code></h2><p>{html.escape(op['summary'])}</p>"
            )
            if op.get("x-scope"):
                parts.append(f"<p>Scope: <code>{html.escape(op['x-scope'])}</code></p>")
            if op.get("parameters"):
                rows = "".join(
                    f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                    f"<td>{'required' if p.get('required') else ''}</td>"
                    f"<td>{_schema_text(p['schema'], spec)}</td>"
                    f"<td>{html.escape(p.get('description', ''))}</td></tr>"
                    for p in op["parameters"]
                )
                parts.append(f"<table>{rows}</table>")
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<p>Body (JSON): {_schema_text(body, spec)}</p>")
            answers = ", ".join(
                f"<code>{status}</code> {_answer_text(answer, spec)}"
                for status, answer in op["responses"].items()
            )
            parts.append(f"<p>Answers: {answers}</p>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(
            f"<h3 id={html.escape(name)}>{html.escape(name)}</h3>"
            f"<pre>{html.escape(json.dumps(schema, ensure_ascii=False, indent=2))}</pre>"
        )
    return "\n".join(parts) + "\n</html>\n"
