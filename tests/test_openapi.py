"""`GET /api/v1/openapi.json` describes every `/api/v1` route; the app's real answers and the
curl examples of the README and docs/ validate against it."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, ValidationError

from handlers.web import api_models
from handlers.web.openapi import Operation, api_routes, undescribed
from storage.db import Database
from tests.conftest import AppFactory
from tests.megafon_replay import load, replay
from tests.test_docs import documentation

Client = TestClient[web.Request, web.Application]


def _app(client: Client) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def test_every_api_route_is_described_and_the_spec_needs_no_token(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    assert undescribed(_app(client)) == []
    response = await client.get("/api/v1/openapi.json")  # no Authorization header
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    routes = {(r.method, r.path) for r in api_routes(_app(client))}
    assert listed == routes
    assert ("POST", "/api/v1/leads") in listed and ("GET", "/api/v1/calls/{call_id}") in listed
    # Every reference points at a schema that is there.
    text = json.dumps(spec)
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in spec["components"]["schemas"], name
    detail = spec["paths"]["/api/v1/calls/{call_id}"]["get"]
    assert detail["parameters"][0] == {
        "name": "call_id",
        "in": "path",
        "required": True,
        # ids are 64-bit; past the columns' range the answer is 404 (a row that cannot exist)
        "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1},
    }
    assert "401" in detail["responses"]


async def test_the_docs_page_lists_every_operation_without_the_network(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    response = await client.get("/api/v1/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    for route in api_routes(_app(client)):
        assert f"{route.method} {route.path}" in page
    assert "<script" not in page and "http://" not in page.replace("http://localhost", "")


def _operation(app: web.Application, method: str, path: str) -> Operation:
    """The operation whose path template matches a concrete path."""
    for route in api_routes(app):
        pattern = re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(route.path))
        if route.method == method and re.fullmatch(pattern, path):
            assert route.operation is not None
            return route.operation
    raise AssertionError(f"{method} {path} is not in the spec")


def _valid(model: type[BaseModel] | None, value: Any) -> None:
    (model or api_models.ErrorAnswer).model_validate(value)


async def test_the_apps_real_answers_validate_against_the_spec(
    make_client: AppFactory, db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(db)
    app = _app(client)
    await replay(client, load("inbound_answered"))

    async def check(method: str, path: str, **kwargs: Any) -> Any:
        response = await client.request(method, path, headers=auth, **kwargs)
        answers = _operation(app, method, urlsplit(path).path).answers
        assert response.status in answers, (path, response.status, await response.text())
        body = await response.json()
        _valid(answers[response.status], body)
        return body

    calls = (await check("GET", "/api/v1/calls?limit=5"))["calls"]
    assert calls
    await check("GET", f"/api/v1/calls/{calls[0]['id']}")
    await check("GET", "/api/v1/calls/999999")
    await check("GET", "/api/v1/calls?limit=0")
    client_id = calls[0]["client_id"]
    await check("GET", f"/api/v1/clients/{client_id}")
    await check("GET", "/api/v1/clients?phone=8 910 123-45-67")
    await check("GET", f"/api/v1/clients/{client_id}/dialog?limit=2")
    await check(
        "POST", "/api/v1/megafon_call", json={"client_phone": "89004443322", "user": "andy"}
    )
    await check("POST", "/api/v1/megafon_call", json={"client_phone": "12", "user": "andy"})
    await check("POST", "/api/v1/calls", json={"client_phone": "89004443322", "manager_id": 404})
    await check("POST", "/api/v1/leads", json={"phone": "+7 910 000-00-01", "name": "Анна"})


def _curl_commands(text: str) -> list[list[str]]:
    """Every `curl …` of the docs, continuation lines and multi-line quotes joined."""
    commands: list[list[str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if not lines[index].lstrip().startswith("curl "):
            index += 1
            continue
        command = lines[index]
        while True:
            try:
                words = shlex.split(command.replace("\\\n", " "), comments=False)
            except ValueError:  # a quote still open: the command goes on
                words = None
            if words is not None and not command.rstrip().endswith("\\"):
                break
            index += 1
            command += "\n" + lines[index]
        commands.append(words)
        index += 1
    return commands


async def test_every_documented_api_example_validates_against_the_spec(
    make_client: AppFactory, db: Database
) -> None:
    app = _app(await make_client(db))
    readme = documentation()  # README.md and docs/*.md
    checked = 0
    for words in _curl_commands(readme):
        url = next(word for word in words if word.startswith("http"))
        parts = urlsplit(url)
        if not parts.path.startswith("/api/v1/"):
            continue
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        operation = _operation(app, method, parts.path)
        if parts.query:
            assert operation.query is not None, url
            _strict(operation.query, {k: v[0] for k, v in parse_qs(parts.query).items()})
        if "-d" in words:
            assert operation.body is not None, url
            _strict(operation.body, json.loads(words[words.index("-d") + 1]))
        checked += 1
    assert checked >= 4  # megafon_call, calls (GET and POST), leads

    # The answers the docs show after `# 200 {…}` / `# → 201 {…}` validate too.
    shown = re.findall(r"^# (?:→ )?(\d{3}) (\{.*\})$", readme, re.MULTILINE)
    for status, body in shown:
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            continue
        models = [
            answers[int(status)]
            for route in api_routes(app)
            if route.operation is not None
            and int(status) in (answers := route.operation.answers)
            and answers[int(status)] is not None
        ]
        assert any(_fits(model, value) for model in models), (status, body)
        checked += 1
    assert checked >= 6


def _strict(model: type[BaseModel], value: dict[str, Any]) -> None:
    """Valid, and no field the model does not know (a README typo would be ignored)."""
    model.model_validate(value)
    assert set(value) <= set(model.model_fields), set(value) - set(model.model_fields)


def _fits(model: type[BaseModel] | None, value: Any) -> bool:
    try:
        _valid(model, value)
    except ValidationError:
        return False
    return True


def _router_table(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the router serves under /api/v1, read from the router
    itself (not from openapi.api_routes, which builds the document)."""
    found = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = str(info.get("path") or info.get("formatter") or info.get("prefix") or "")
        if not path.startswith("/api/v1"):
            continue
        template = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)  # {call_id:\d+} → {call_id}
        for route in resource:
            if route.method != "HEAD":  # aiohttp adds HEAD beside each GET
                found.add((route.method, template))
    return found


async def test_every_route_of_the_router_is_declared_and_other_methods_are_405(
    make_client: AppFactory, db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(db)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    declared = {(m.upper(), path) for path, item in spec["paths"].items() for m in item}
    table = _router_table(_app(client))
    assert ("GET", "/api/v1/reports/calls") in table
    assert ("DELETE", "/api/v1/managers/{manager_id}") in table
    assert table - declared == set(), "routes without an OpenAPI operation"
    assert declared - table == set(), "operations without a route"

    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{\w+\}", "1", path)
        allowed = {method.upper() for method in item}
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - allowed:
            response = await client.request(method, concrete, headers=auth)
            assert response.status == 405, (method, path, response.status)
            assert (await response.json())["error"] == "Method Not Allowed"
            assert allowed <= set(response.headers["Allow"].split(",")), (method, path)


async def test_the_spec_declares_content_types_and_real_constraints(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    for path, item in paths.items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"], path
            for status, answer in operation["responses"].items():
                if status == "204":
                    assert "content" not in answer, (method, path)
    docs = paths["/api/v1/docs"]["get"]["responses"]["200"]
    assert list(docs["content"]) == ["text/html"]
    report = {p["name"]: p for p in paths["/api/v1/reports/calls"]["get"]["parameters"]}
    assert report["from"]["schema"]["format"] == "date"
    assert report["by"]["schema"]["enum"] == ["day", "hour", "source", "campaign", "landing",
                                              "pool", "manager"]  # fmt: skip
    assert report["provider"]["schema"]["enum"] == ["megafon", "novofon"]
    calls = {p["name"]: p for p in paths["/api/v1/calls"]["get"]["parameters"]}
    assert calls["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500,
                                        "default": 50}  # fmt: skip
    assert "pattern" in calls["phone"]["schema"]
    manager_id = schemas["ManagerCallRequest"]["properties"]["manager_id"]
    assert (manager_id["format"], manager_id["maximum"]) == ("int64", 2**63 - 1)
    lead = paths["/api/v1/leads"]["post"]["parameters"]
    assert lead == [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "a repeat with the same key answers 200 with the same ids",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    ]
    assert "503" in paths["/api/v1/megafon_call"]["post"]["responses"]
