"""`GET /api/v1/reports/…`: the report figures as JSON (the same models the pages render).

Behind the API's bearer token (api.bearer_auth guards every /api/v1 path)."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel

from handlers.web.errors import JsonError
from handlers.web.report_params import ReportQuery, parse_query
from telephony.reports import BadPeriod, ReportService
from telephony.reports.models import CallsReport, LeadsReport, MissedReport, TrackingReport

log = logging.getLogger(__name__)
REPORTS = web.AppKey("trubka_reports", ReportService)
PREFIX = "/api/v1/reports"
routes = web.RouteTableDef()
# The answer model of each path (for an OpenAPI document built from pydantic models).
RESPONSES: dict[str, type[BaseModel]] = {
    PREFIX + "/calls": CallsReport,
    PREFIX + "/missed": MissedReport,
    PREFIX + "/leads": LeadsReport,
    PREFIX + "/tracking": TrackingReport,
}


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
async def calls_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.calls(query.info, query.period, query.filters, query.by))


@routes.get(PREFIX + "/missed")
async def missed_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.missed(query.info, query.period, query.filters))


@routes.get(PREFIX + "/leads")
async def leads_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.leads(query.info, query.period))


@routes.get(PREFIX + "/tracking")
async def tracking_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return _json(await service.tracking(query.info, query.period, query.filters))
