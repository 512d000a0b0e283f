"""Operations: `/healthz` and Prometheus `/metrics`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers.web.context import WEB, WebCore
from storage.inbox_queries import lane_backlog
from storage.queue_stats import QUEUES, queue_stats

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    context = request.app[WEB]
    try:
        await context.db.ping()
    except Exception as exc:  # any driver error means the same to a load balancer
        log.warning("health check: database unreachable: %s", exc.__class__.__name__)
        return web.json_response({"status": "error", "error": "database unreachable"}, status=503)
    problems = await context.health.problems()
    if problems:
        reason = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        return web.json_response(
            {"status": "error", "error": reason, "problems": problems}, status=503
        )
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    context = request.app[WEB]
    for hook in context.scrape_hooks:
        try:
            await hook()
        except Exception as exc:  # a stale gauge is better than no metrics at all
            log.warning("metrics: a gauge refresh failed: %s", exc.__class__.__name__)
    body = generate_latest(context.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def queue_gauges(context: WebCore) -> Callable[[], Awaitable[None]]:
    """A scrape hook: each durable queue's backlog, oldest due age and set-aside count."""

    async def refresh() -> None:
        for shape in QUEUES:
            stats = await queue_stats(context.db, shape)
            context.metrics.queue_backlog.labels(stats.name).set(stats.backlog)
            context.metrics.queue_oldest.labels(stats.name).set(stats.oldest_due_seconds)
            context.metrics.queue_set_aside.labels(stats.name).set(stats.set_aside)

    return refresh


def inbox_lane_gauges(context: WebCore) -> Callable[[], Awaitable[None]]:
    """A scrape hook: the inbox's backlog per lane (a replay fills `history`; `live` should
    stay near 0 while it drains)."""

    async def refresh() -> None:
        for lane, count in (await lane_backlog(context.db)).items():
            context.metrics.inbox_backlog.labels(lane.label).set(count)

    return refresh
