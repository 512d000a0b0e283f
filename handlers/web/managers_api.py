"""`/api/v1/managers`: list, create, change and remove managers outside Telegram, by the same
rules as the Telegram commands (telephony/managers.py): `/addmanager`, `/pbx`, the call mode,
`/duty`, `/delmanager`."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.web.api_models import MAX_BIGINT, NOT_BLANK_PATTERN, integral
from handlers.web.context import CALLS, WEB, CallsWeb
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.validation import answer, parse_body, path_id
from storage.models import Manager
from telephony.managers import (
    PbxIdentity,
    ProviderNeeded,
    add_manager,
    add_pbx_manager,
    all_managers,
    bind_identity,
    parse_pbx_identity,
    retire_manager,
    set_call_mode,
    set_on_duty,
)
from telephony.providers.megafon import PROVIDER as MEGAFON
from telephony.providers.novofon import PROVIDER as NOVOFON

routes = web.RouteTableDef()
PATH = "/api/v1/managers"

Provider = Literal["megafon", "novofon"]
Mode = Literal["disabled", "app", "api"]
# What `pbx` may be depends on the provider (Novofon has no logins) and on phonenumbers (a
# number must be a real one): rules JSON Schema cannot say, answered 400 naming `pbx`.
PBX_HELP = (
    "a MegaFon login, an extension (up to 6 digits) or a phone number, optionally after the "
    "provider's name (`novofon 100`); Novofon has no logins. Not by these rules: 400."
)
PBX_RULES = "`pbx` is checked against `provider` and the number plan: 400 naming it when not."


class ManagerAnswer(BaseModel):
    """A manager as the API shows it."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    telegram_user_id: int | None
    provider: str = Field(examples=["megafon", "novofon"])
    pbx_login: str | None
    pbx_ext: str | None
    pbx_telnum: str | None
    call_mode: str = Field(examples=["disabled", "app", "api"])
    on_duty: bool


class ManagerList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    managers: list[ManagerAnswer]


class ManagerCreate(BaseModel):
    """`pbx` is a login, an extension or a number; `provider` may come first in it
    (`"novofon 100"`) or alone, and is needed when both PBXs are configured."""

    # Strict: a JSON number where the schema says integer, true/false for booleans. A
    # manager is known by Telegram or by the PBX (or both).
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["telegram_user_id"],
                    "properties": {"telegram_user_id": {"type": "integer", "minimum": 1}},
                },
                {"required": ["pbx"], "properties": {"pbx": {"type": "string"}}},
            ]
        },
    )

    # The bounds before the validator: after it, pydantic writes them into the schema as
    # `ge`/`le`, which JSON Schema does not know (the bound was lost from the description).
    telegram_user_id: (
        Annotated[int, Field(ge=1, le=MAX_BIGINT), BeforeValidator(integral)] | None
    ) = None
    name: str = Field(default="", max_length=200)
    provider: Provider | None = None
    pbx: str | None = Field(
        default=None, max_length=200, pattern=NOT_BLANK_PATTERN, description=PBX_HELP
    )
    call_mode: Mode | None = None
    on_duty: bool = False


class ManagerChange(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    provider: Provider | None = None
    pbx: str | None = Field(
        default=None, max_length=200, pattern=NOT_BLANK_PATTERN, description=PBX_HELP
    )
    call_mode: Mode | None = None
    on_duty: bool | None = None


def _answer(manager: Manager) -> ManagerAnswer:
    assert manager.id is not None
    return ManagerAnswer.model_validate(
        {
            "id": manager.id,
            "name": manager.name,
            "telegram_user_id": manager.telegram_user_id,
            "provider": manager.call_provider,
            "pbx_login": manager.pbx_login,
            "pbx_ext": manager.pbx_ext,
            "pbx_telnum": manager.pbx_telnum,
            "call_mode": manager.call_mode,
            "on_duty": manager.on_duty,
        }
    )


def _providers(ctx: CallsWeb) -> list[str]:
    return [MEGAFON] * (ctx.pbx is not None) + [NOVOFON] * (ctx.novofon is not None)


def _identity(ctx: CallsWeb, provider: str | None, pbx: str) -> PbxIdentity:
    """The same parsing as `/pbx`: an ambiguous identity is refused with the choices."""
    raw = f"{provider} {pbx}" if provider else pbx
    try:
        return parse_pbx_identity(raw, _providers(ctx))
    except ProviderNeeded as exc:
        raise JsonError(
            400, "Provider needed", field="provider", choices=list(exc.choices)
        ) from None
    except ValueError as exc:
        raise JsonError(400, "Invalid parameters", field="pbx", detail=str(exc)) from None


async def _manager(session: AsyncSession, request: web.Request) -> Manager:
    manager_id = path_id(request, "manager_id")
    manager = await session.get(Manager, manager_id) if manager_id is not None else None
    if manager is None:
        raise JsonError(404, "Manager not found")
    return manager


async def _bind(session: AsyncSession, manager: Manager, identity: PbxIdentity) -> Manager:
    try:
        return await bind_identity(session, manager, identity)
    except ValueError as exc:  # the login belongs to another manager
        raise JsonError(409, "PBX identity taken", detail=str(exc)) from None


@routes.get(PATH)
@operation("List managers", answers={200: ManagerList}, tag="managers")
async def list_all(request: web.Request) -> web.Response:
    async with request.app[WEB].db.session() as session:
        managers = await all_managers(session)
    return answer(ManagerList(managers=[_answer(m) for m in managers]))


@routes.get(PATH + r"/{manager_id:\d+}")
@operation("A manager", answers={200: ManagerAnswer, 404: None}, tag="managers")
async def show(request: web.Request) -> web.Response:
    async with request.app[WEB].db.session() as session:
        manager = await _manager(session, request)
    return answer(_answer(manager))


@routes.post(PATH)
@operation(
    "Add a manager (the same rules as the Telegram commands)",
    body=ManagerCreate,
    answers={201: ManagerAnswer, 400: None, 409: None},
    tag="managers",
    description=PBX_RULES,
)
async def create(request: web.Request) -> web.Response:
    ctx = request.app[CALLS]
    body = await parse_body(request, ManagerCreate)
    if body.telegram_user_id is None and body.pbx is None:
        raise JsonError(400, "Invalid parameters", detail="give telegram_user_id or pbx (or both)")
    identity = _identity(ctx, body.provider, body.pbx) if body.pbx is not None else None
    async with ctx.db.session() as session:
        if body.telegram_user_id is not None:
            manager, created = await add_manager(session, body.telegram_user_id, body.name)
            if not created:
                raise JsonError(409, "Manager exists", id=manager.id)
        else:
            manager = await add_pbx_manager(session, body.name)
        if identity is not None:
            manager = await _bind(session, manager, identity)
            if body.name:
                manager.name = body.name
        if body.call_mode is not None:
            manager = await set_call_mode(session, manager, body.call_mode)
        manager = await set_on_duty(session, manager, body.on_duty)
        shown = _answer(manager)
    return answer(shown, 201)


@routes.patch(PATH + r"/{manager_id:\d+}")
@operation(
    "Change a manager: only the fields given",
    body=ManagerChange,
    answers={200: ManagerAnswer, 400: None, 404: None, 409: None},
    tag="managers",
    description=PBX_RULES,
)
async def change(request: web.Request) -> web.Response:
    ctx = request.app[CALLS]
    body = await parse_body(request, ManagerChange)
    async with ctx.db.session() as session:
        manager = await _manager(session, request)
        if body.pbx is not None or body.provider is not None:
            current = manager.pbx_login or manager.pbx_ext or manager.pbx_telnum
            raw = body.pbx if body.pbx is not None else current
            if raw is None:
                raise JsonError(400, "Invalid parameters", field="pbx", detail="is required")
            manager = await _bind(session, manager, _identity(ctx, body.provider, raw))
        if body.name is not None:
            manager.name = body.name
            session.add(manager)
        if body.call_mode is not None:
            manager = await set_call_mode(session, manager, body.call_mode)
        if body.on_duty is not None:
            manager = await set_on_duty(session, manager, body.on_duty)
        shown = _answer(manager)
    return answer(shown)


@routes.delete(PATH + r"/{manager_id:\d+}")
@operation(
    "Remove a manager",
    answers={204: None, 404: None},
    tag="managers",
    description="Like `/delmanager`: Telegram is unbound. A manager the PBX knows (a login, "
    "extension or number) stays for its calls, readable here with `telegram_user_id` null; "
    "any other is deleted (404 after).",
)
async def remove(request: web.Request) -> web.Response:
    """Like `/delmanager`: Telegram is unbound; a manager the PBX knows stays for its calls."""
    async with request.app[WEB].db.session() as session:
        await retire_manager(session, await _manager(session, request))
    return web.Response(status=204)
