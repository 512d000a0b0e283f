"""Named tokens and scopes: every `/api/v1` route declares its scope, and for every route a
token with that scope gets in while a token without it is refused with 403 naming the scope
(generated from the app's own route table: a new route without a scope fails here)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.web.openapi import api_routes
from handlers.web.scopes import PUBLIC, ROUTE_SCOPES, scope_of
from storage.db import Database
from storage.types import utcnow
from telephony.access import tokens
from telephony.access.audit import Actor
from telephony.access.scopes import ADMIN, SCOPES
from tests.conftest import API_TOKEN, AppFactory
from tests.test_megafon_call import run_cli

Client = TestClient[web.Request, web.Application]
SETUP = Actor("test")
ROOT = Path(__file__).resolve().parents[1]


def cli_env(db: Database) -> dict[str, str]:
    """`trubka` in a subprocess on this database, running this tree's code."""
    return {
        "TRUBKA_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "PYTHONPATH": str(ROOT),
    }


def _app(client: Client) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", lambda m: "nobody" if m.group(0) == "{name}" else "1", path)


async def _token(db: Database, name: str, scope: str) -> str:
    _, secret = await tokens.create_token(db, name, scope, actor=SETUP, now=utcnow())
    return secret


async def test_every_route_declares_a_scope_and_enforces_it(
    make_client: AppFactory, any_db: Database
) -> None:
    client = await make_client(any_db)
    routes = api_routes(_app(client))
    undeclared = [f"{r.method} {r.path}" for r in routes if scope_of(r.method, r.path) is None]
    assert undeclared == []
    # The table names no route that is not there (a renamed route leaves no stale entry).
    assert set(ROUTE_SCOPES) == {(r.method, r.path) for r in routes}
    holders = {scope: await _token(any_db, scope.replace(":", "-"), scope) for scope in SCOPES}
    checked = 0
    for route in routes:
        needed = scope_of(route.method, route.path)
        path = _concrete(route.path)
        if needed == PUBLIC:
            response = await client.request(route.method, path)
            assert response.status == 200, path
            continue
        allowed = await client.request(
            route.method, path, headers={"Authorization": f"Bearer {holders[needed]}"}, json={}
        )
        assert allowed.status not in (401, 403), (route, allowed.status, await allowed.text())
        for other in SCOPES:
            if other in (needed, ADMIN):
                continue
            refused = await client.request(
                route.method, path, headers={"Authorization": f"Bearer {holders[other]}"}
            )
            assert refused.status == 403, (route, other)
            assert await refused.json() == {"error": "Missing scope", "scope": needed}
        anonymous = await client.request(route.method, path)
        assert anonymous.status == 401
        checked += 1
    assert checked >= 20


async def test_the_description_names_each_routes_scope(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    call = spec["paths"]["/api/v1/megafon_call"]["post"]
    assert call["x-scope"] == "calls:write"
    assert call["security"] == [{"bearer": ["calls:write"]}]
    assert "403" in call["responses"]
    assert spec["paths"]["/api/v1/tokens"]["get"]["x-scope"] == "admin"
    page = await (await client.get("/api/v1/docs")).text()
    assert "Scope: <code>reports:read</code>" in page


async def test_tokens_over_the_api_are_made_listed_and_revoked(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(any_db)
    made = await client.post(
        "/api/v1/tokens",
        json={"name": "site", "scopes": ["leads:write"], "expires": "90d"},
        headers=auth,
    )
    assert made.status == 201
    body = await made.json()
    secret = body["token"]
    assert body["scopes"] == ["leads:write"] and body["expires_at"]
    site = {"Authorization": f"Bearer {secret}"}
    assert (
        await client.post("/api/v1/leads", json={"phone": "79001112233"}, headers=site)
    ).status == 201
    refused = await client.get("/api/v1/calls", headers=site)
    assert (refused.status, (await refused.json())["scope"]) == (403, "calls:read")
    listed = await (await client.get("/api/v1/tokens", headers=auth)).json()
    assert [t["name"] for t in listed["tokens"]] == ["site"]
    assert secret not in str(listed)
    # The secret is not stored: only its sha256.
    assert secret not in str(await tokens.list_tokens(any_db))
    again = await client.post(
        "/api/v1/tokens", json={"name": "site", "scopes": ["admin"]}, headers=auth
    )
    assert again.status == 409
    bad = await client.post("/api/v1/tokens", json={"name": "x", "scopes": ["root"]}, headers=auth)
    assert bad.status == 400 and "root" in (await bad.json())["detail"]
    assert (await client.delete("/api/v1/tokens/site", headers=auth)).status == 204
    assert (
        await client.post("/api/v1/leads", json={"phone": "79001112233"}, headers=site)
    ).status == 401
    assert (await client.delete("/api/v1/tokens/site", headers=auth)).status == 404


async def test_an_expired_token_is_refused(make_client: AppFactory, db: Database) -> None:
    client = await make_client(db)
    _, secret = await tokens.create_token(
        db,
        "old",
        "calls:read",
        actor=SETUP,
        now=utcnow() - timedelta(days=2),
        expires_in=timedelta(days=1),
    )
    response = await client.get("/api/v1/calls", headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 401


async def test_token_commands(make_client: AppFactory, db: Database) -> None:
    env = cli_env(db)
    code, out, err = await run_cli(
        env, "token", "create", "--name", "marketing", "--scope", "reports:read", "--expires", "90d"
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("trk_") and "shown this once" in err
    code, out, _ = await run_cli(env, "token", "list")
    assert code == 0 and "marketing" in out and "reports:read" in out and secret not in out
    code, _, err = await run_cli(env, "token", "create", "--name", "m2", "--scope", "nope")
    assert code == 2 and "unknown scope nope" in err
    client = await make_client(db)
    marketing = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/reports/calls", headers=marketing)).status == 200
    assert (await client.get("/api/v1/calls", headers=marketing)).status == 403
    code, out, _ = await run_cli(env, "token", "revoke", "marketing")
    assert code == 0
    assert (await client.get("/api/v1/reports/calls", headers=marketing)).status == 401
    # The bootstrap token still opens everything.
    bootstrap = {"Authorization": f"Bearer {API_TOKEN}"}
    assert (await client.get("/api/v1/tokens", headers=bootstrap)).status == 200


async def _login(client: Client, token: str) -> int:
    response = await client.post(
        "/reports/login", data={"token": token, "next": "/reports/calls"}, allow_redirects=False
    )
    return response.status


async def test_reports_log_in_per_person_and_revoking_ends_the_sessions(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(any_db)
    marketing = await _token(any_db, "marketing", "reports:read")
    site = await _token(any_db, "site", "leads:write")
    assert await _login(client, site) == 401  # a token without reports:read
    assert "trubka_reports" not in {c.key for c in client.session.cookie_jar}
    assert await _login(client, marketing) == 303
    page = await client.get("/reports/calls", allow_redirects=False)
    assert page.status == 200
    # Revoking the token ends its session at once.
    assert (await client.delete("/api/v1/tokens/marketing", headers=auth)).status == 204
    page = await client.get("/reports/calls", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/reports/login")
    # The bootstrap token still logs in; logging out ends that session (the cookie replayed
    # afterwards is refused).
    assert await _login(client, API_TOKEN) == 303
    cookie = {c.key: c.value for c in client.session.cookie_jar}["trubka_reports"]
    assert (await client.post("/reports/logout", allow_redirects=False)).status == 303
    client.session.cookie_jar.clear()
    replayed = await client.get(
        "/reports/calls", headers={"Cookie": f"trubka_reports={cookie}"}, allow_redirects=False
    )
    assert replayed.status == 303
