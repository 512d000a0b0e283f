"""Outward effects of the domain go through these small protocols; bot/ implements them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Call, Client, DialogMessage

log = logging.getLogger(__name__)


@dataclass
class CallUpdate:
    """What one accepted push changed: the call, its client and the dialog lines it appended."""

    call: Call
    client: Client | None
    trigger: str  # the event type (INCOMING …), "history", "rating" or "requested"
    dialog: list[DialogMessage] = field(default_factory=list)
    client_created: bool = False
    # Client variables this push changed (name → new value): the scenarios' `variable` trigger.
    variables: dict[str, str] = field(default_factory=dict)
    # What deciders settled inside the transaction that applied the push (by decider), for
    # their observer half to act on after the commit.
    decided: dict[str, Any] = field(default_factory=dict)


class CallObserver(Protocol):
    """Told about every stored call change, after it is committed."""

    async def call_updated(self, update: CallUpdate) -> None: ...


@runtime_checkable
class CallDecider(Protocol):
    """Decides on a call inside the transaction that applied its push (call tracking, leads):
    one transaction instead of one more per observer. Writes only; no network."""

    async def decide(self, session: AsyncSession, update: CallUpdate) -> None: ...


class CallObservers:
    """Fans a change out to every observer; one failing observer does not stop the others."""

    def __init__(self, observers: Sequence[CallObserver] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    async def call_updated(self, update: CallUpdate) -> None:
        for observer in self._observers:
            try:
                await observer.call_updated(update)
            except Exception:
                log.exception("call observer %r failed", observer)

    async def decide(self, session: AsyncSession, update: CallUpdate) -> None:
        """The deciders among the observers, in order, in the caller's transaction."""
        for observer in self._observers:
            if isinstance(observer, CallDecider):
                await observer.decide(session, update)


@dataclass
class ClientMessage:
    """A message a client wrote through a messenger, stored as dialog line `dialog_id`."""

    client_id: int
    text: str
    channel: str
    dialog_id: int | None = None


class MessageObserver(Protocol):
    """Told about every client message, after it is committed."""

    async def message_received(self, message: ClientMessage) -> None: ...


class MessageObservers:
    """Fans a client message out; one failing observer does not stop the others."""

    def __init__(self, observers: Sequence[MessageObserver] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: MessageObserver) -> None:
        self._observers.append(observer)

    async def message_received(self, message: ClientMessage) -> None:
        for observer in self._observers:
            try:
                await observer.message_received(message)
            except Exception:
                log.exception("message observer %r failed", observer)


@dataclass
class LeadInfo:
    """A new lead: `source` is "form" (a site form), "call" (the lead rules made one from a
    call), "scenario" (a scenario's create_lead), "callback" (the site's callback widget) or
    "chat" (a chat started from the site's messenger link). `fields` are the lead's own values
    (name, email, comment, is_need_callback, utm_* …) as the lead code has them."""

    source: str
    client_id: int | None
    lead_id: int | None = None
    call_id: int | None = None
    fields: dict[str, str | bool | None] = field(default_factory=dict)


class LeadObserver(Protocol):
    """Told about every new lead, after it is committed (the lead code calls `lead_created`)."""

    async def lead_created(self, lead: LeadInfo) -> None: ...


class LeadObservers:
    """Fans a new lead out; one failing observer does not stop the others."""

    def __init__(self, observers: Sequence[LeadObserver] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: LeadObserver) -> None:
        self._observers.append(observer)

    async def lead_created(self, lead: LeadInfo) -> None:
        for observer in self._observers:
            try:
                await observer.lead_created(lead)
            except Exception:
                log.exception("lead observer %r failed", observer)


class LeadMaker(Protocol):
    """Creates a lead for a client (the leads room); tells LeadObservers itself."""

    async def create_lead(
        self, client_id: int, fields: dict[str, str | bool | None], call_id: int | None = None
    ) -> LeadInfo: ...
