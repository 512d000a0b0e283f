"""Wiring the reports: `/reports` pages (a sub-application with its own login),
`/api/v1/reports/…` JSON, the report gauges and HTTP latency histograms in `/metrics`; and
the hourly rollup the tracking report reads (a background worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.settings import Settings
from bot.singletons import REPORT_ROLLUP, Leadership
from handlers.web import reports_api
from handlers.web.context import CONTEXT
from handlers.web.http_metrics import HttpMetrics
from handlers.web.reports import build_reports_app
from storage.db import Database
from telephony.infra.clock import Clock
from telephony.reports import ReportService
from telephony.reports.gauges import ReportGauges
from telephony.reports.rollup import PoolHourRollup
from telephony.scenarios.hours import WorkingHours


def setup_reports(
    app: web.Application, settings: Settings, db: Database, hours: WorkingHours
) -> ReportService:
    """`hours`: the scenario file's working hours (response times are counted in them)."""
    context = app[CONTEXT]
    registry = context.metrics.registry
    # First: the latency of everything else, errors included.
    app.middlewares.insert(0, HttpMetrics(registry).middleware)
    service = ReportService(db, hours)
    app[reports_api.REPORTS] = service
    app.add_routes(reports_api.routes)
    secure = settings.public_url.startswith("https://")
    app.add_subapp("/reports", build_reports_app(service, secure_cookie=secure))
    context.scrape_hooks.append(ReportGauges(db, registry).refresh)
    return service


ROLLUP = web.AppKey("trubka_report_rollup", PoolHourRollup)


def setup_rollup(
    app: web.Application, db: Database, leadership: Leadership, clock: Clock | None = None
) -> PoolHourRollup:
    """The rollup of closed hours, on the worker runner, in the process holding the
    "report-rollup" lease (it also runs while no web process is up)."""
    rollup = PoolHourRollup(db, now=clock.now) if clock is not None else PoolHourRollup(db)
    guard = leadership.guard(REPORT_ROLLUP)
    rollup.gate = guard.held
    guard.on_gain(rollup.worker.wake)
    app[ROLLUP] = rollup

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = rollup.worker.start()
        yield
        await rollup.worker.stop(task=task)

    app.cleanup_ctx.append(lifetime)
    return rollup
