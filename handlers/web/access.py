"""Access at the HTTP edge: the one middleware that checks every `/api/v1` route's scope
(`handlers/web/scopes.py`), and the routes of access itself: `/api/v1/tokens`,
`/api/v1/audit`, `DELETE /api/v1/clients/{id}` (erase a client)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from aiohttp import web
from pydantic import ValidationError

from handlers.web.access_models import (
    AuditAnswer,
    AuditQuery,
    ForgottenAnswer,
    TokenCreatedAnswer,
    TokenRequest,
    TokensAnswer,
)
from handlers.web.bodies import read_json_object
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.scopes import API, PUBLIC, scope_of
from handlers.web.validation import parse_query
from storage.db import Database
from telephony.access import audit, privacy, tokens
from telephony.access.audit import Actor
from telephony.access.scopes import ADMIN, allows
from telephony.access.tokens import Principal, TokenError
from telephony.infra.clock import Clock, SystemClock

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class AccessService:
    """What access needs: the database, the bootstrap token, the time."""

    db: Database
    bootstrap: str | None
    clock: Clock = field(default_factory=SystemClock)


ACCESS = web.AppKey("trubka_access", AccessService)
_PRINCIPAL = web.RequestKey("trubka_principal", Principal)


def principal_of(request: web.Request) -> Principal | None:
    return request.get(_PRINCIPAL)


def actor_of(request: web.Request) -> Actor:
    """Who made this request, for the audit log: the token's name and the client's address."""
    principal = principal_of(request)
    return Actor(principal.actor if principal else "anonymous", request.remote or "")


def _template(request: web.Request) -> str | None:
    """The matched route's path template (`/api/v1/calls/{call_id}`), None when no route."""
    route = request.match_info.route
    if request.match_info.http_exception is not None or route.resource is None:
        return None
    info = route.resource.get_info()
    path = info.get("path") or info.get("formatter")
    return str(path) if path else None


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@web.middleware
async def require_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every `/api/v1` request: a known token (401 otherwise) holding the route's scope (403
    `{"error", "scope"}` otherwise). A route without a declared scope needs `admin`."""
    if not request.path.startswith(API + "/"):
        return await handler(request)
    template = _template(request)
    needed = scope_of(request.method, template) if template else None
    if template is not None and needed is None:
        needed = ADMIN
        log.warning("route %s %s declares no scope: admin only", request.method, template)
    if needed == PUBLIC:
        return await handler(request)
    access = request.config_dict[ACCESS]
    principal = await tokens.authenticate(
        access.db, _bearer(request), bootstrap=access.bootstrap, now=access.clock.now()
    )
    if principal is None:
        if not access.bootstrap:
            raise JsonError(
                401,
                "API disabled",
                detail="set TRUBKA_API_TOKEN, or use a token made with `trubka token create`",
            )
        raise JsonError(401, "Invalid token")
    request[_PRINCIPAL] = principal
    action = AUDITED.get((request.method, template or ""))
    if needed is not None and not allows(principal.scopes, needed):
        if action is not None:
            await audit.write(access.db, actor_of(request), action, outcome=f"403 no {needed}")
        raise JsonError(403, "Missing scope", scope=needed)
    if action is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _audit(request, action, exc.status, exc.text)
        raise
    body = response.body if isinstance(response, web.Response) else None
    await _audit(request, action, response.status, body)
    return response


# State-changing API routes whose every request is an audit row (after the answer: the
# outcome is known; a call's PBX answer comes first). Token and erasure routes write their
# rows themselves, in the action's own transaction.
AUDITED = {
    ("POST", API + "/megafon_call"): "call.place",
    ("POST", API + "/calls"): "call.place",
    ("POST", API + "/managers"): "manager.add",
    ("PATCH", API + "/managers/{manager_id}"): "manager.change",
    ("DELETE", API + "/managers/{manager_id}"): "manager.remove",
}
_OBJECT_KEYS = (("call_id", "call"), ("id", "manager"))


async def _audit(request: web.Request, action: str, status: int, body: object) -> None:
    """The row of an audited request: the object from the path or the answer; the outcome
    `ok` or the status with the error's short reason (never the request's body)."""
    answer: dict[str, object] = {}
    if isinstance(body, bytes | str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        answer = parsed if isinstance(parsed, dict) else {}
    obj = ",".join(
        f"{key.removesuffix('_id')}:{value}" for key, value in request.match_info.items()
    )
    for key, kind in _OBJECT_KEYS:
        if not obj and isinstance(answer.get(key), int):
            obj = f"{kind}:{answer[key]}"
    outcome = "ok" if status < 400 else f"{status} {answer.get('error', '')}".strip()
    await audit.write(
        request.config_dict[ACCESS].db, actor_of(request), action, obj, outcome=outcome
    )


routes = web.RouteTableDef()


@routes.get(API + "/tokens")
@operation("Named tokens (never their secrets)", answers={200: TokensAnswer}, tag="access")
async def list_tokens(request: web.Request) -> web.Response:
    found = await tokens.list_tokens(request.config_dict[ACCESS].db)
    return web.json_response({"tokens": [info.as_json() for info in found]})


@routes.post(API + "/tokens")
@operation(
    "Make a named token; its secret is in this answer only",
    body=TokenRequest,
    answers={201: TokenCreatedAnswer, 400: None, 409: None},
    tag="access",
)
async def create_token(request: web.Request) -> web.Response:
    access = request.config_dict[ACCESS]
    try:
        wanted = TokenRequest.model_validate(await read_json_object(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise JsonError(400, "Invalid parameters", field=field, detail=first["msg"]) from None
    try:
        expires = tokens.parse_duration(wanted.expires) if wanted.expires else None
        info, secret = await tokens.create_token(
            access.db,
            wanted.name,
            ",".join(wanted.scopes),
            actor=actor_of(request),
            now=access.clock.now(),
            expires_in=expires,
        )
    except TokenError as exc:
        status = 409 if "exists" in str(exc) else 400
        raise JsonError(status, "Invalid token request", detail=str(exc)) from None
    return web.json_response({**info.as_json(), "token": secret}, status=201)


@routes.delete(API + "/tokens/{name}")
@operation(
    "Revoke a token (its reports sessions end too)", answers={204: None, 404: None}, tag="access"
)
async def revoke_token(request: web.Request) -> web.Response:
    access = request.config_dict[ACCESS]
    try:
        await tokens.revoke_token(
            access.db, request.match_info["name"], actor=actor_of(request), now=access.clock.now()
        )
    except TokenError as exc:
        raise JsonError(404, "Token not found", detail=str(exc)) from None
    return web.Response(status=204)


def parse_since(raw: str) -> datetime:
    """`2026-12-01` (midnight UTC) or an ISO date-time (UTC when it has no offset): the
    command line's `--since` (the API's `since` is its model's, handlers/web/access_models.py)."""
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"since {raw!r}: an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@routes.get(API + "/audit")
@operation(
    "The audit log, oldest first",
    query=AuditQuery,
    answers={200: AuditAnswer, 400: None},
    tag="access",
)
async def audit_log(request: web.Request) -> web.Response:
    query = parse_query(request, AuditQuery)
    found = await audit.entries(
        request.config_dict[ACCESS].db, since=query.since, limit=query.limit or 1000
    )
    return web.json_response({"entries": [audit.entry_json(entry) for entry in found]})


@routes.delete(API + r"/clients/{client_id:\d+}")
@operation(
    "Erase a client's personal data (calls stay, anonymous, for the reports)",
    answers={200: ForgottenAnswer, 404: None},
    tag="clients",
    description="The client's row stays, anonymous, for its calls: its id still answers, "
    "with no name, phone or variables and a dialog of blank texts. Its phone finds nobody.",
)
async def forget_client(request: web.Request) -> web.Response:
    access = request.config_dict[ACCESS]
    raw = request.match_info["client_id"]
    client_id = int(raw) if len(raw) <= 10 else MAX_ID + 1
    if client_id > MAX_ID:
        raise JsonError(404, "Client not found")
    done = await privacy.forget_person(
        access.db,
        phone=None,
        client_id=client_id,
        actor=actor_of(request),
        now=access.clock.now(),
    )
    if done is None or client_id not in done.client_ids:
        raise JsonError(404, "Client not found")
    return web.json_response({"client_id": client_id, "erased": done.erased})


def setup(app: web.Application, service: AccessService, *, http: bool = True) -> None:
    """The service for the middleware and the reports' login; the routes when serving HTTP."""
    app[ACCESS] = service
    if http:
        app.add_routes(routes)
