"""Wiring the reports: `/reports` pages (a sub-application with its own login),
`/api/v1/reports/…` JSON, the report gauges and HTTP latency histograms in `/metrics`; and
the hourly rollup the tracking report reads (a background worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.shell import Shell
from bot.singletons import REPORT_ROLLUP
from handlers.web import reports_api
from handlers.web.http_metrics import HttpMetrics
from handlers.web.reports import build_reports_app
from telephony.reports import ReportService
from telephony.reports.gauges import ReportGauges
from telephony.reports.rollup import PoolHourRollup
from telephony.scenarios.hours import WorkingHours


def setup_reports(shell: Shell, hours: WorkingHours) -> ReportService | None:
    """`hours`: the scenario file's working hours (response times are counted in them). HTTP
    roles only: the pages and the API."""
    if not shell.role.http:
        return None
    app, settings, db, context = shell.app, shell.settings, shell.db, shell.web
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


def setup_rollup(shell: Shell) -> PoolHourRollup | None:
    """The rollup of closed hours (the tracking report's), on the worker runner, in the
    background process holding the "report-rollup" lease (it also runs while no web process
    is up)."""
    if not shell.role.background:
        return None
    app, db, leadership, clock = shell.app, shell.db, shell.leadership, shell.clock
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
