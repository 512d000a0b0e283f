"""How the Telegram side is doing, for people: `/metrics` figures, a `/healthz` check, and an
error in the log once per change of state (a refused token, a dead send loop), not per send."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge

from storage.telegram_queue import LANE_NAMES

log = logging.getLogger("trubka.telegram")

OUTCOMES = ("sent", "failed", "dead", "dropped")


class SendStatus:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self._refused: bool | None = None
        self._running: bool | None = None
        self._stopped = False
        self.deliveries = Counter(
            "trubka_telegram_deliveries",
            "Telegram deliveries settled, by outcome (failed: refused for good; dead: out of "
            "attempts; dropped: no longer needed)",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.too_many = Counter(
            "trubka_telegram_429",
            "429 Too Many Requests answers from Telegram, by chat kind",
            ["chat_kind"],
            registry=registry,
        )
        self.refused_gauge = Gauge(
            "trubka_telegram_token_refused",
            "1 while Telegram refuses our bot token (401)",
            registry=registry,
        )
        self.running_gauge = Gauge(
            "trubka_telegram_sender_running", "1 while the send loop runs", registry=registry
        )
        self.depth = Gauge(
            "trubka_telegram_queue_depth",
            "Pending Telegram deliveries by lane and chat kind",
            ["lane", "chat_kind"],
            registry=registry,
        )

    # --- events --------------------------------------------------------------------------

    def delivered(self, outcome: str, count: int = 1) -> None:
        self.deliveries.labels(outcome).inc(count)

    def retry_after(self, chat_id: int) -> None:
        self.too_many.labels("group" if chat_id < 0 else "private").inc()

    def token_refused(self, refused: bool) -> None:
        if refused == self._refused:
            return
        if refused:
            log.error(
                "Telegram refuses the bot token (401 Unauthorized): check TRUBKA_TELEGRAM_TOKEN; "
                "messages wait in the queue until it is fixed"
            )
        elif self._refused:
            log.info("Telegram accepts the bot token again")
        self._refused = refused
        self.refused_gauge.set(1 if refused else 0)

    def loop_running(self, running: bool, *, stopping: bool = False) -> None:
        if running == self._running:
            return
        if not running and self._running and not stopping:
            log.error("the Telegram send loop stopped: nothing more is sent")
        self._running = running
        self._stopped = stopping
        self.running_gauge.set(1 if running else 0)

    def queue_depth(self, depth: dict[tuple[str, str], int]) -> None:
        for lane in LANE_NAMES.values():
            for kind in ("group", "private"):
                self.depth.labels(lane, kind).set(depth.get((lane, kind), 0))

    # --- /healthz ------------------------------------------------------------------------

    async def problem(self) -> str | None:
        if self._refused:
            return "Telegram refuses the bot token (401 Unauthorized)"
        if self._running is False and not self._stopped:
            return "the send loop is not running"
        return None
