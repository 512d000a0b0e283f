"""`/api/v1`: the bearer-token API for scripts and sites.

Requests are read into the models of handlers/web/api_models.py and answers written from them
(handlers/web/validation.py); the OpenAPI description is made of the same models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.web.api_models import (
    CallDetailAnswer,
    CallsAnswer,
    CallsQuery,
    ClientAnswer,
    ClientQuery,
    DialogAnswer,
    DialogQuery,
    ManagerCallAnswer,
    ManagerCallRequest,
    MegafonCallAnswer,
    MegafonCallRequest,
)
from handlers.web.auth import same_secret
from handlers.web.context import CALLS, WEB
from handlers.web.errors import JsonError
from handlers.web.openapi import PUBLIC_PATHS, operation
from handlers.web.serialize import call_answer, call_detail_answer, client_answer, message_answer
from handlers.web.validation import MAX_ID, answer, parse_body, parse_query, path_id
from storage.models import Call, CallAttribution, Client, Manager
from storage.queries import call_events, dialog_of, recent_calls
from telephony.calls.dialing import (
    CallRequestError,
    ManagerCannotCall,
    PbxNotConfigured,
    RequestedCall,
    megafon_call,
    place_manager_call,
)
from telephony.clients import ClientView, client_view_by_id, client_view_by_phone, variables_of
from telephony.providers.megafon import PbxError

__all__ = ["API", "MAX_ID", "bearer_auth", "routes"]

routes = web.RouteTableDef()
API = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(API + "/") and request.path not in PUBLIC_PATHS:
        expected = request.app[WEB].api_token
        if not expected:
            raise JsonError(401, "API disabled", detail="set TRUBKA_API_TOKEN to enable the API")
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not same_secret(token.strip(), expected):
            raise JsonError(401, "Invalid token")
    return await handler(request)


def _not_configured(exc: PbxNotConfigured) -> JsonError:
    """A PBX that is simply not set up is not a bad gateway: 503 naming the settings."""
    return JsonError(
        503,
        "PBX not configured",
        provider=exc.provider,
        settings=list(exc.settings),
        detail=exc.message,
    )


def _refused(exc: PbxError) -> JsonError:
    return JsonError(502, "PBX refused the call", message=exc.message, pbx_status=exc.status)


def _call_answer(requested: RequestedCall) -> MegafonCallAnswer:
    return MegafonCallAnswer(
        call_id=requested.call_id,
        client_id=requested.client_id,
        phone=requested.phone,
        pbx_callid=requested.pbx_callid,
    )


@routes.post(API + "/megafon_call")
@operation(
    "Call a client through MegaFon (the PBX rings the manager, then the client)",
    body=MegafonCallRequest,
    answers={200: MegafonCallAnswer, 400: None, 502: None, 503: None},
    tag="calls",
)
async def start_megafon_call(request: web.Request) -> web.Response:
    ctx = request.app[CALLS]
    try:
        body = await parse_body(request, MegafonCallRequest)
    except JsonError:
        ctx.metrics.megafon_calls.labels("invalid").inc()
        raise
    try:
        requested = await megafon_call(ctx.db, ctx.pbx, body.client_phone, body.user, ctx.observer)
    except CallRequestError as exc:
        ctx.metrics.megafon_calls.labels("invalid").inc()
        raise JsonError(400, "Invalid parameters", detail=str(exc)) from None
    except PbxNotConfigured as exc:
        ctx.metrics.megafon_calls.labels("refused").inc()
        raise _not_configured(exc) from None
    except PbxError as exc:
        ctx.metrics.megafon_calls.labels("refused").inc()
        raise _refused(exc) from None
    ctx.metrics.megafon_calls.labels("ok").inc()
    return answer(_call_answer(requested))


@routes.post(API + "/calls")
@operation(
    "Call a client through the manager's own PBX (MegaFon or Novofon)",
    body=ManagerCallRequest,
    answers={200: ManagerCallAnswer, 400: None, 404: None, 409: None, 502: None, 503: None},
    tag="calls",
)
async def start_manager_call(request: web.Request) -> web.Response:
    """A manager's call through the PBX they are bound to (MegaFon or Novofon)."""
    ctx = request.app[CALLS]
    body = await parse_body(request, ManagerCallRequest)
    manager = None
    if 1 <= body.manager_id <= MAX_ID:
        async with ctx.db.session() as session:
            manager = await session.get(Manager, body.manager_id)
    if manager is None:
        raise JsonError(404, "Manager not found")
    try:
        requested = await place_manager_call(
            ctx.db, ctx.dialers, manager, body.client_phone, ctx.observer
        )
    except ManagerCannotCall as exc:
        raise JsonError(409, "Manager cannot call", detail=str(exc)) from None
    except CallRequestError as exc:
        raise JsonError(400, "Invalid parameters", detail=str(exc)) from None
    except PbxNotConfigured as exc:
        raise _not_configured(exc) from None
    except PbxError as exc:
        raise _refused(exc) from None
    return answer(
        ManagerCallAnswer(
            **_call_answer(requested).model_dump(),
            provider=manager.call_provider,
        )
    )


async def _client_response(connection: AsyncConnection, client: ClientView | None) -> web.Response:
    if client is None:
        raise JsonError(404, "Client not found")
    return answer(client_answer(client, await variables_of(connection, client.id)))


@routes.get(API + "/clients")
@operation(
    "Find a client by phone",
    query=ClientQuery,
    answers={200: ClientAnswer, 400: None, 404: None},
    tag="clients",
)
async def client_by_phone(request: web.Request) -> web.Response:
    phone = parse_query(request, ClientQuery).phone
    # One read transaction: no write lock, does not wait for the call inbox's writer; Core
    # statements built once (a hot path: CRMs look callers up while the phone rings).
    async with request.app[WEB].db.read_connection() as connection:
        return await _client_response(connection, await client_view_by_phone(connection, phone))


@routes.get(API + r"/clients/{client_id:\d+}")
@operation("A client with its variables", answers={200: ClientAnswer, 404: None}, tag="clients")
async def client_by_id(request: web.Request) -> web.Response:
    client_id = path_id(request, "client_id")
    if client_id is None:
        raise JsonError(404, "Client not found")
    async with request.app[WEB].db.read_connection() as connection:
        return await _client_response(connection, await client_view_by_id(connection, client_id))


@routes.get(API + r"/clients/{client_id:\d+}/dialog")
@operation(
    "A client's dialog: messages and call notifications, oldest first",
    query=DialogQuery,
    answers={200: DialogAnswer, 400: None, 404: None},
    tag="clients",
)
async def client_dialog(request: web.Request) -> web.Response:
    client_id = path_id(request, "client_id")
    query = parse_query(request, DialogQuery)
    if client_id is None:
        raise JsonError(404, "Client not found")
    async with request.app[WEB].db.session() as session:
        if await session.get(Client, client_id) is None:
            raise JsonError(404, "Client not found")
        messages = await dialog_of(
            session, client_id, after_id=min(query.after_id or 0, MAX_ID), limit=query.limit
        )
    return answer(
        DialogAnswer(client_id=client_id, messages=[message_answer(m) for m in messages])
    )


@routes.get(API + "/calls")
@operation(
    "Recent calls, newest first",
    query=CallsQuery,
    answers={200: CallsAnswer, 400: None},
    tag="calls",
)
async def list_calls(request: web.Request) -> web.Response:
    query = parse_query(request, CallsQuery)
    async with request.app[WEB].db.session() as session:
        calls = await recent_calls(session, phone=query.phone, limit=query.limit)
    return answer(CallsAnswer(calls=[call_answer(call) for call in calls]))


@routes.get(API + r"/calls/{call_id:\d+}")
@operation(
    "A call with its raw events, attribution and lead flags",
    answers={200: CallDetailAnswer, 404: None},
    tag="calls",
)
async def call_detail(request: web.Request) -> web.Response:
    call_id = path_id(request, "call_id")
    if call_id is None:
        raise JsonError(404, "Call not found")
    async with request.app[WEB].db.session() as session:
        call = await session.get(Call, call_id)
        if call is None:
            raise JsonError(404, "Call not found")
        events = await call_events(session, call_id)
        attribution = await session.get(CallAttribution, call_id)
    return answer(call_detail_answer(call, events, attribution))
