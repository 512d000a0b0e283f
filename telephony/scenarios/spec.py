"""The scenario file's format as pydantic models: a wrong file is refused at start with the rule
and the field named (`rules[1] "missed call": do[2].megafon_call.user: …`).

A rule is `on` (one trigger), `if` (conditions, all must hold) and `do` (actions in order).
Every trigger, condition and action is a mapping with one key, so the file reads like a list of
sentences; a bare string is the short form (`on: message`, `send_message: "Привет"`, `wait: 15m`).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from telephony.calls.outcome import CALL_EVENTS, CALL_STATUSES
from telephony.scenarios.hours import Span, parse_days, parse_spans
from telephony.scenarios.templates import check_template

LEAD_SOURCES = ("form", "call", "scenario", "callback", "chat")
TRIGGERS = ("message", "call_event", "call_status", "lead", "variable", "delivery_status")
# A message's fate as the channels report it (`sms_status delivered` …), and "uncertain": the
# process died mid-send and it was not sent again (it may have gone out).
DELIVERY_STATES = ("sent", "delivered", "read", "failed", "uncertain")
VIA = ("telegram", "whatsapp", "sms")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNITS = {None: 60, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}

Template = Annotated[str, AfterValidator(check_template)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: object) -> timedelta:
    """`90s`, `15m`, `2h`, `1d`, or a bare number of minutes."""
    if isinstance(value, bool):
        raise ValueError("a duration like 15m, 2h or 30s")
    if isinstance(value, int | float):
        return timedelta(minutes=value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration like 15m, 2h or 30s")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit])


def _one_key(kind: str, value: Any, known: tuple[str, ...]) -> tuple[str, Any]:
    if isinstance(value, str):
        return value, None
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{kind} must be a mapping with one key, one of: {', '.join(known)}")
    key, inner = next(iter(value.items()))
    return str(key), inner


# --- triggers -----------------------------------------------------------------------------


class MessageMatch(_Strict):
    """A client's message: any (no key), exact `text` (case and spaces ignored), a `regex`
    searched in it, or a `command` (`/start`, `start`)."""

    text: str | None = None
    regex: re.Pattern[str] | None = None
    command: str | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> MessageMatch:
        if len(self.model_fields_set) > 1:
            raise ValueError("give one of text, regex or command")
        return self

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        return value.strip().lstrip("/").lower() if value is not None else None


def _names(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class Trigger(_Strict):
    message: MessageMatch | None = None
    call_event: list[Literal[CALL_EVENTS]] | None = None  # type: ignore[valid-type]
    call_status: list[Literal[CALL_STATUSES]] | None = None  # type: ignore[valid-type]
    lead: list[Literal[LEAD_SOURCES]] | None = None  # type: ignore[valid-type]
    variable: list[str] | None = None
    delivery_status: list[Literal[DELIVERY_STATES]] | None = None  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        key, inner = _one_key("on", value, TRIGGERS)
        if key not in TRIGGERS:
            raise ValueError(f"unknown trigger {key!r}: use one of {', '.join(TRIGGERS)}")
        if key == "message":
            if isinstance(inner, str):
                inner = {"text": inner}
            return {key: inner or {}}
        return {key: _names(inner)}

    @property
    def kind(self) -> str:
        return next(iter(self.model_fields_set))


# --- conditions ---------------------------------------------------------------------------


class Test(_Strict):
    """What a field must be; several keys must all hold (`{gt: 10, lt: 60}`)."""

    equals: Any = None
    not_equals: Any = None
    one_of: list[Any] | None = None
    not_one_of: list[Any] | None = None
    regex: re.Pattern[str] | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar_is_equals(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {"equals": value}
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Test:
        if not self.model_fields_set:
            raise ValueError("give a test: equals, one_of, regex, gt, ge, lt, le, exists …")
        return self


class Condition(_Strict):
    """`{<field>: <test>}`, `{working_hours: true}`, `{any: [...]}` or `{not: {...}}`.

    Fields are `client.*`, `call.*`, `lead.*`, `message.*`, `variable.*`, `since.*`,
    `trigger.*`, or a client variable by its name (`megafon_call_direction`, `utm_source`)."""

    field: str | None = None
    test: Test | None = None
    working_hours: bool | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError("a condition is a mapping with one key: {call.direction: in}")
        key, inner = next(iter(value.items()))
        key = str(key)
        if key == "working_hours":
            return {"working_hours": inner}
        if key == "any":
            return {"any": inner}
        if key == "not":
            return {"not": inner}
        return {"field": key, "test": inner}


# --- actions ------------------------------------------------------------------------------


class SendMessage(_Strict):
    """A message to the client by the routing order (README "Routing"), or `via` one channel.
    `urgent`: SMS / WhatsApp also at night; `transactional`: also to a client who opted out
    (a reply about their own call or order, never marketing)."""

    text: Template
    via: Literal[VIA] | None = None  # type: ignore[valid-type]
    urgent: bool = False
    transactional: bool = False


class SendTemplate(_Strict):
    """An approved WhatsApp template (`params`: its body parameters, templates themselves).
    `text`: what SMS or Telegram get instead when WhatsApp cannot carry it (no WhatsApp, not
    a WhatsApp user); without it the template goes to WhatsApp or nowhere."""

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="ru", min_length=2, max_length=16)
    params: list[Template] = Field(default_factory=list)
    text: Template | None = None
    via: Literal[VIA] | None = None  # type: ignore[valid-type]
    urgent: bool = False
    transactional: bool = False


class NotifyManagers(_Strict):
    text: Template


class MegafonCall(_Strict):
    """Salebot's megafon_call(client_phone, user): the PBX rings `user`, then the client."""

    client_phone: Template = "{{ client.phone }}"
    user: Template


class Wait(_Strict):
    """The following actions run later: after `for`, and/or at the next working time.

    When it comes due, the rule's `if` and the wait's own `if` are checked again; if one no
    longer holds, the rest of the rule is cancelled."""

    for_: timedelta | None = Field(default=None, alias="for")
    in_working_hours: bool = False
    if_: list[Condition] = Field(default_factory=list, alias="if")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {"for": value}
        return value

    @field_validator("for_", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if value is not None else None

    @model_validator(mode="after")
    def _something(self) -> Wait:
        if self.for_ is None and not self.in_working_hours:
            raise ValueError("wait needs `for` (15m, 2h …) and/or `in_working_hours: true`")
        return self


class CreateLead(_Strict):
    """A lead for the client; its fields are templates (`comment: "{{ message.text }}"`)."""

    name: Template | None = None
    email: Template | None = None
    comment: Template | None = None
    is_need_callback: bool | None = None
    utm_source: Template | None = None
    utm_medium: Template | None = None
    utm_campaign: Template | None = None


ACTIONS = (
    "send_message",
    "send_template",
    "notify_managers",
    "set_variable",
    "megafon_call",
    "wait",
    "create_lead",
)


class Action(_Strict):
    send_message: SendMessage | None = None
    send_template: SendTemplate | None = None
    notify_managers: NotifyManagers | None = None
    set_variable: dict[str, Template | None] | None = None
    megafon_call: MegafonCall | None = None
    wait: Wait | None = None
    create_lead: CreateLead | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        key, inner = _one_key("an action", value, ACTIONS)
        if key not in ACTIONS:
            raise ValueError(f"unknown action {key!r}: use one of {', '.join(ACTIONS)}")
        if key in ("send_message", "notify_managers") and isinstance(inner, str):
            inner = {"text": inner}
        if key == "send_template" and isinstance(inner, str):
            inner = {"name": inner}
        if key == "create_lead" and inner is None:
            inner = {}
        return {key: inner}

    @field_validator("set_variable")
    @classmethod
    def _some_names(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is not None and not value:
            raise ValueError("name at least one variable: {set_variable: {callback: 'yes'}}")
        return value

    @property
    def kind(self) -> str:
        return next(iter(self.model_fields_set))


# --- the file -----------------------------------------------------------------------------


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=200)
    on: Trigger
    if_: list[Condition] = Field(default_factory=list, alias="if")
    do: list[Action] = Field(min_length=1)
    enabled: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


DEFAULT_HOURS: dict[str, str | list[str]] = {"mon-fri": "09:00-18:00"}


class ScenarioFile(_Strict):
    # Day (`mon`, `mon-fri`, `sat,sun`, `daily`) → `09:00-18:00`, a list of ranges, or `off`.
    working_hours: dict[str, str | list[str]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    holidays: list[date] = Field(default_factory=list)
    # Who takes calls nobody is responsible for: templates see it as `duty_manager`.
    duty_manager: str | None = None
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for key, spans in value.items():
            try:
                parse_days(key)
                parse_spans(spans)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> ScenarioFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}: names must be unique")
            seen.add(rule.name)
        return self

    def week(self) -> dict[int, list[Span]]:
        week: dict[int, list[Span]] = {}
        for key, spans in self.working_hours.items():
            for day in parse_days(key):
                week[day] = parse_spans(spans)  # a later, more specific key wins
        return week
