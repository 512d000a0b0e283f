"""`/api/v1`: the bearer-token API for scripts and sites."""

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
from handlers.web.bodies import read_json_object
from handlers.web.context import CONTEXT
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.serialize import (
    call_detail_json,
    call_json,
    client_json,
    message_json,
)
from storage.models import Call, CallAttribution, Client, Manager
from storage.queries import call_events, dialog_of, recent_calls
from telephony.calls.dialing import (
    CallRequestError,
    ManagerCannotCall,
    megafon_call,
    place_manager_call,
)
from telephony.clients import (
    ClientView,
    client_view_by_id,
    client_view_by_phone,
    variables_of,
)
from telephony.phones import InvalidPhone, normalize_phone
from telephony.providers.megafon import PbxError

routes = web.RouteTableDef()
API = "/api/v1"
MAX_LIMIT = 500
MAX_ID = 2**31 - 1  # ids are INTEGER columns (PostgreSQL int4)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _int(value: str, name: str, *, default: int | None = None, maximum: int | None = None) -> int:
    if value == "" and default is not None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise JsonError(400, "Invalid parameters", field=name, detail="must be a number") from None
    if number < 1 or (maximum is not None and number > maximum):
        raise JsonError(400, "Invalid parameters", field=name, detail=f"must be 1..{maximum}")
    return number


def _id(value: str, name: str) -> int:
    """A row id from the path: an id past the columns' range is a row that cannot exist."""
    number = _int(value, name)
    if number > MAX_ID:
        raise JsonError(404, "Not found", field=name)
    return number


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise JsonError(400, "Invalid phone", field="phone", detail=str(exc)) from None


@routes.post(API + "/megafon_call")
@operation(
    "Call a client through MegaFon (the PBX rings the manager, then the client)",
    body=MegafonCallRequest,
    answers={200: MegafonCallAnswer, 400: None, 502: None},
    tag="calls",
)
async def start_megafon_call(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await read_json_object(request)
    client_phone, user = body.get("client_phone"), body.get("user")
    if not isinstance(client_phone, str | int) or not isinstance(user, str | int):
        raise JsonError(
            400, "Invalid parameters", detail="client_phone and user are required strings"
        )
    try:
        requested = await megafon_call(ctx.db, ctx.pbx, str(client_phone), str(user), ctx.observer)
    except CallRequestError as exc:
        ctx.metrics.megafon_calls.labels("invalid").inc()
        raise JsonError(400, "Invalid parameters", detail=str(exc)) from None
    except PbxError as exc:
        ctx.metrics.megafon_calls.labels("refused").inc()
        raise JsonError(
            502, "PBX refused the call", message=exc.message, pbx_status=exc.status
        ) from None
    ctx.metrics.megafon_calls.labels("ok").inc()
    return web.json_response(
        {
            "call_id": requested.call_id,
            "client_id": requested.client_id,
            "phone": requested.phone,
            "pbx_callid": requested.pbx_callid,
        }
    )


@routes.post(API + "/calls")
@operation(
    "Call a client through the manager's own PBX (MegaFon or Novofon)",
    body=ManagerCallRequest,
    answers={200: ManagerCallAnswer, 400: None, 404: None, 409: None, 502: None},
    tag="calls",
)
async def start_manager_call(request: web.Request) -> web.Response:
    """A manager's call through the PBX they are bound to (MegaFon or Novofon)."""
    ctx = request.app[CONTEXT]
    body = await read_json_object(request)
    client_phone, manager_id = body.get("client_phone"), body.get("manager_id")
    if not isinstance(client_phone, str | int) or isinstance(client_phone, bool):
        raise JsonError(400, "Invalid parameters", field="client_phone", detail="is required")
    if not isinstance(manager_id, int) or isinstance(manager_id, bool):
        raise JsonError(400, "Invalid parameters", field="manager_id", detail="must be a number")
    if not 1 <= manager_id <= MAX_ID:
        raise JsonError(404, "Manager not found")
    async with ctx.db.session() as session:
        manager = await session.get(Manager, manager_id)
    if manager is None:
        raise JsonError(404, "Manager not found")
    try:
        requested = await place_manager_call(
            ctx.db, ctx.dialers, manager, str(client_phone), ctx.observer
        )
    except ManagerCannotCall as exc:
        raise JsonError(409, "Manager cannot call", detail=str(exc)) from None
    except CallRequestError as exc:
        raise JsonError(400, "Invalid parameters", detail=str(exc)) from None
    except PbxError as exc:
        raise JsonError(
            502, "PBX refused the call", message=exc.message, pbx_status=exc.status
        ) from None
    return web.json_response(
        {
            "call_id": requested.call_id,
            "client_id": requested.client_id,
            "phone": requested.phone,
            "pbx_callid": requested.pbx_callid,
            "provider": manager.call_provider,
        }
    )


async def _client_response(connection: AsyncConnection, client: ClientView | None) -> web.Response:
    if client is None:
        raise JsonError(404, "Client not found")
    return web.json_response(client_json(client, await variables_of(connection, client.id)))


@routes.get(API + "/clients")
@operation(
    "Find a client by phone",
    query=ClientQuery,
    answers={200: ClientAnswer, 400: None, 404: None},
    tag="clients",
)
async def client_by_phone(request: web.Request) -> web.Response:
    phone = _phone(request.query.get("phone", ""))
    # One read transaction: no write lock, does not wait for the call inbox's writer; Core
    # statements built once (a hot path: CRMs look callers up while the phone rings).
    async with request.app[CONTEXT].db.read_connection() as connection:
        return await _client_response(connection, await client_view_by_phone(connection, phone))


@routes.get(API + r"/clients/{client_id:\d+}")
@operation("A client with its variables", answers={200: ClientAnswer, 404: None}, tag="clients")
async def client_by_id(request: web.Request) -> web.Response:
    client_id = _id(request.match_info["client_id"], "client_id")
    async with request.app[CONTEXT].db.read_connection() as connection:
        return await _client_response(connection, await client_view_by_id(connection, client_id))


@routes.get(API + r"/clients/{client_id:\d+}/dialog")
@operation(
    "A client's dialog: messages and call notifications, oldest first",
    query=DialogQuery,
    answers={200: DialogAnswer, 400: None, 404: None},
    tag="clients",
)
async def client_dialog(request: web.Request) -> web.Response:
    client_id = _id(request.match_info["client_id"], "client_id")
    after_id = request.query.get("after_id", "")
    limit = _int(request.query.get("limit", ""), "limit", default=MAX_LIMIT, maximum=MAX_LIMIT)
    async with request.app[CONTEXT].db.session() as session:
        if await session.get(Client, client_id) is None:
            raise JsonError(404, "Client not found")
        messages = await dialog_of(
            session,
            client_id,
            after_id=min(_int(after_id, "after_id"), MAX_ID) if after_id else 0,
            limit=limit,
        )
    return web.json_response(
        {"client_id": client_id, "messages": [message_json(m) for m in messages]}
    )


@routes.get(API + "/calls")
@operation(
    "Recent calls, newest first",
    query=CallsQuery,
    answers={200: CallsAnswer, 400: None},
    tag="calls",
)
async def list_calls(request: web.Request) -> web.Response:
    raw_phone = request.query.get("phone", "")
    phone = _phone(raw_phone) if raw_phone else None
    limit = _int(request.query.get("limit", ""), "limit", default=50, maximum=MAX_LIMIT)
    async with request.app[CONTEXT].db.session() as session:
        calls = await recent_calls(session, phone=phone, limit=limit)
    return web.json_response({"calls": [call_json(call) for call in calls]})


@routes.get(API + r"/calls/{call_id:\d+}")
@operation(
    "A call with its raw events, attribution and lead flags",
    answers={200: CallDetailAnswer, 404: None},
    tag="calls",
)
async def call_detail(request: web.Request) -> web.Response:
    call_id = _id(request.match_info["call_id"], "call_id")
    async with request.app[CONTEXT].db.session() as session:
        call = await session.get(Call, call_id)
        if call is None:
            raise JsonError(404, "Call not found")
        events = await call_events(session, call_id)
        attribution = await session.get(CallAttribution, call_id)
    return web.json_response(call_detail_json(call, events, attribution))
