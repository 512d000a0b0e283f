"""`GET /api/v1/reports/…`: the report figures as JSON (the same models the pages render).

Behind the API's bearer token (api.bearer_auth guards every /api/v1 path)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.report_params import ReportQuery, parse_query
from telephony.reports import BadPeriod, ReportService
from telephony.reports.models import CallsReport, LeadsReport, MissedReport, TrackingReport

log = logging.getLogger(__name__)
REPORTS = web.AppKey("trubka_reports", ReportService)
PREFIX = "/api/v1/reports"
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The answer model of each path (for an OpenAPI document built from pydantic models).
RESPONSES: dict[str, type[BaseModel]] = {
    PREFIX + "/calls": CallsReport,
    PREFIX + "/missed": MissedReport,
    PREFIX + "/leads": LeadsReport,
    PREFIX + "/tracking": TrackingReport,
}


class ReportParams(BaseModel):
    """The filters every report takes (all optional; the period defaults to the last 7 days)."""

    model_config = ConfigDict(extra="forbid")

    from_: str | None = Field(default=None, alias="from", description="first day, YYYY-MM-DD")
    to: str | None = Field(default=None, description="last day, YYYY-MM-DD")
    provider: str | None = Field(default=None, description="megafon or novofon")
    pool: str | None = Field(default=None, description="a tracking pool's name")
    manager: str | None = Field(default=None, description="a manager's PBX login or id")
    by: str | None = Field(
        default=None, description="calls by: source, campaign, landing, pool or manager"
    )


def _described(summary: str, answer: type[BaseModel]) -> Callable[[Handler], Handler]:
    return operation(summary, query=ReportParams, answers={200: answer, 400: None}, tag="reports")


def _query(request: web.Request) -> tuple[ReportService, ReportQuery]:
    service = request.app[REPORTS]
    try:
        return service, parse_query(service, request.query)
    except BadPeriod as exc:
        log.info("reports API: bad parameter %s: %s", exc.field, exc.message)
        raise JsonError(400, "Invalid parameters", field=exc.field, detail=exc.message) from None


def _json(model: BaseModel) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")


@routes.get(PREFIX + "/calls")
@_described("Calls over time and by source, campaign, landing page, pool or manager", CallsReport)
async def calls_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.calls(query.info, query.period, query.filters, query.by))


@routes.get(PREFIX + "/missed")
@_described("Missed-call recovery and manager response time", MissedReport)
async def missed_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.missed(query.info, query.period, query.filters))


@routes.get(PREFIX + "/leads")
@_described("Leads: created, delivered to Roistat and Metrika, pending, dead", LeadsReport)
async def leads_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.leads(query.info, query.period))


@routes.get(PREFIX + "/tracking")
@_described("Call tracking: pool utilisation, overload, attribution confidence", TrackingReport)
async def tracking_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.tracking(query.info, query.period, query.filters))
