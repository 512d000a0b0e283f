"""Wiring operations: `/healthz` (each durable queue's check) and `/metrics` (queue gauges)."""

from __future__ import annotations

from bot.shell import Shell
from handlers.web import ops
from storage.db import Database
from storage.queue_stats import QUEUES, QueueShape, queue_stats
from telephony.infra.health import HealthCheck


def queue_health(db: Database, shape: QueueShape, stuck_after: float) -> HealthCheck:
    async def check() -> str | None:
        stats = await queue_stats(db, shape)
        if stats.oldest_due_seconds > stuck_after:
            return f"oldest due item waits {stats.oldest_due_seconds:.0f} s"
        return None

    return check


def setup_ops(shell: Shell) -> None:
    core = shell.web
    core.scrape_hooks.append(ops.queue_gauges(core))
    core.scrape_hooks.append(ops.inbox_lane_gauges(core))
    for shape in QUEUES[1:]:  # the inbox has its own check (it knows its loops)
        core.health.add(shape.name, queue_health(shell.db, shape, shell.settings.queue_stuck_after))
    shell.app.add_routes(ops.routes)
