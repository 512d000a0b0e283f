"""Outward effects of the domain go through these small protocols; bot/ implements them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from storage.models import Call, Client, DialogMessage

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    # Stored as history although it is a call's ringing or end: its call's outcome said it
    # ended long ago (a PBX replaying its history; telephony/calls/lanes.py). Nobody's phone
    # rings: no alert (bot/telegram/notifier.py).
    replayed: bool = False


class CallObserver(Protocol):
    """Told about every stored call change, after it is committed."""

    async def call_updated(self, update: CallUpdate) -> None: ...


class FanOut(Generic[T]):
    """Tells every member in turn; one failing member does not stop the others (its failure is
    logged). The one fan-out of the house: call, client-message and lead observers."""

    def __init__(self, members: Sequence[T] = (), *, name: str = "observer") -> None:
        self._members = list(members)
        self._name = name

    def add(self, member: T) -> None:
        self._members.append(member)

    def __len__(self) -> int:
        return len(self._members)

    async def tell(self, notify: Callable[[T], Awaitable[object]]) -> None:
        for member in self._members:
            try:
                await notify(member)
            except Exception:
                log.exception("%s %r failed", self._name, member)


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
    """Told about every new lead, after it is committed (the lead code tells them)."""

    async def lead_created(self, lead: LeadInfo) -> None: ...


def message_observers(members: Sequence[MessageObserver] = ()) -> FanOut[MessageObserver]:
    return FanOut(members, name="message observer")


def lead_observers(members: Sequence[LeadObserver] = ()) -> FanOut[LeadObserver]:
    return FanOut(members, name="lead observer")


class LeadMaker(Protocol):
    """Creates a lead for a client (the leads room); tells the lead observers itself."""

    async def create_lead(
        self, client_id: int, fields: dict[str, str | bool | None], call_id: int | None = None
    ) -> LeadInfo: ...
