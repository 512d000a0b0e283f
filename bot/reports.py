"""Wiring the reports: `/reports` pages (a sub-application with its own login),
`/api/v1/reports/…` JSON, the report gauges and HTTP latency histograms in `/metrics`."""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings
from handlers.web import reports_api
from handlers.web.context import CONTEXT
from handlers.web.http_metrics import HttpMetrics
from handlers.web.reports import build_reports_app
from storage.db import Database
from telephony.reports import ReportService
from telephony.reports.gauges import ReportGauges
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
