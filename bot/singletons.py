"""Singletons across processes: one `Leadership` per process keeps the lease rows
(storage/leases.py) of every singleton it runs, and each singleton consults its `LeaseGuard`.

A loop that must run in one process at a time asks `guard.held()` before each pass (and is
woken by `on_gain` when the lease comes to it); something started once per holder (polling,
webhook registration, a sweep) hangs on `on_gain`/`on_loss`. A process that dies stops renewing;
another one takes the row over once it expires (TTL seconds, checked every TTL/3).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from storage import leases
from storage.db import Database
from telephony.infra.worker import Worker

log = logging.getLogger("trubka.leases")

TTL = 5.0  # seconds a holder keeps the row without renewing: a dead one is replaced after this
# A holder stops trusting its lease earlier than the row says: room for clock skew and a slow
# renewal, so the old and the new holder never both act.
TRUST = 0.7

# The singletons of `trubka serve` (names of rows in worker_leases).
TELEGRAM_UPDATES = "telegram-updates"  # long polling, or setWebhook
TELEGRAM_SENDER = "telegram-sender"
METRIKA_BATCHES = "metrika-batches"
SCENARIO_SCHEDULER = "scenario-scheduler"
LEADS_SWEEP = "leads-sweep"
REPORT_ROLLUP = "report-rollup"  # the hourly rollup of the tracking pools


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseGuard:
    """This process's view of one lease: held or not, at which epoch."""

    def __init__(self, name: str, ttl: float = TTL) -> None:
        self.name = name
        self.ttl = ttl
        self.epoch: int | None = None
        self._trusted_until = 0.0  # monotonic
        self._gain: list[Callable[[], object]] = []
        self._loss: list[Callable[[], object]] = []

    def held(self) -> bool:
        return self.epoch is not None and time.monotonic() < self._trusted_until

    def on_gain(self, callback: Callable[[], object]) -> None:
        self._gain.append(callback)

    def on_loss(self, callback: Callable[[], object]) -> None:
        self._loss.append(callback)

    def _update(self, epoch: int | None, asked_at: float) -> None:
        was = self.epoch is not None
        self.epoch = epoch
        if epoch is not None:
            self._trusted_until = asked_at + self.ttl * TRUST
        now_held = epoch is not None
        if now_held != was:
            log.info(
                "lease %s %s%s",
                self.name,
                "taken" if now_held else "lost",
                f" (epoch {epoch})" if epoch is not None else "",
            )
            for callback in self._gain if now_held else self._loss:
                try:
                    callback()
                except Exception:
                    log.exception("lease %s: callback failed", self.name)


class Leadership:
    """Takes and renews the leases of one process; releases them on a clean stop."""

    def __init__(self, db: Database, *, holder: str | None = None, ttl: float = TTL) -> None:
        self.db = db
        self.holder = holder or holder_id()
        self.ttl = ttl
        self.guards: dict[str, LeaseGuard] = {}
        # Renewed three times per TTL, on the one worker runner.
        self.worker = Worker("leases", self._renew, idle_poll=ttl / 3, error_pause=ttl / 3)

    def guard(self, name: str) -> LeaseGuard:
        if name not in self.guards:
            self.guards[name] = LeaseGuard(name, self.ttl)
        return self.guards[name]

    async def tick(self) -> None:
        """Take or renew every lease once."""
        for guard in self.guards.values():
            asked_at = time.monotonic()
            try:
                epoch = await asyncio.wait_for(
                    leases.take(self.db, guard.name, self.holder, timedelta(seconds=self.ttl)),
                    self.ttl / 3,
                )
            except Exception as exc:  # the database away: keep the lease only as long as trusted
                log.warning("lease %s: renewal failed: %s", guard.name, exc.__class__.__name__)
                if not guard.held():
                    guard._update(None, asked_at)
                continue
            guard._update(epoch, asked_at)

    async def _renew(self) -> float:
        await self.tick()
        return self.ttl / 3

    async def run(self) -> None:
        await self.worker.run()

    async def lifetime(self) -> AsyncIterator[None]:
        """Taken before the loops start (so a lone process starts at once), released after they
        stopped (so the next holder need not wait out the TTL)."""
        if not self.guards:
            yield
            return
        await self.tick()
        task = self.worker.start()
        yield
        await self.worker.stop(grace=self.ttl, task=task)
        for guard in self.guards.values():
            if guard.epoch is not None:
                try:
                    await leases.release(self.db, guard.name, self.holder, guard.epoch)
                except Exception as exc:
                    log.warning("lease %s: release failed: %s", guard.name, exc)
                guard._update(None, time.monotonic())
