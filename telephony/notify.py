"""Outward effects of the domain go through these small protocols; bot/ implements them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


class CallObserver(Protocol):
    """Told about every stored call change, after it is committed."""

    async def call_updated(self, update: CallUpdate) -> None: ...


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
