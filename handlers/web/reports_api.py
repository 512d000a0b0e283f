"""`GET /api/v1/reports/…`: the report figures as JSON (the same models the pages render).

Behind the API's bearer token (api.bearer_auth guards every /api/v1 path)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal, get_args

from aiohttp import web
from pydantic import BaseModel, Field

from handlers.web.api_models import Day
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.report_params import MAX_VALUE, PROVIDERS, ReportQuery, parse_query
from handlers.web.validation import answer
from handlers.web.validation import parse_query as read_query
from storage.report_queries import DIMENSIONS
from telephony.reports import BadPeriod, ReportService
from telephony.reports.models import CallsReport, LeadsReport, MissedReport, TrackingReport
from telephony.reports.periods import MAX_DAYS

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


Provider = Literal["megafon", "novofon"]
By = Literal["day", "hour", "source", "campaign", "landing", "pool", "manager"]
# The enums are the lists the report code checks against (a new one must be added here too).
assert get_args(Provider) == PROVIDERS and get_args(By) == DIMENSIONS


class ReportParams(BaseModel):
    """The filters every report takes (all optional; the period defaults to the last 7 days
    up to today; `to` not before `from`, at most 366 days)."""

    from_: Day | None = Field(default=None, alias="from", description="first day (local)")
    to: Day | None = Field(default=None, description="last day (local), inclusive")
    provider: Provider | None = None
    pool: str | None = Field(
        default=None, max_length=MAX_VALUE, description="a tracking pool's name"
    )
    manager: str | None = Field(
        default=None, max_length=MAX_VALUE, description="a manager's PBX login or id"
    )
    by: By | None = Field(default=None, description="what the calls report groups by (source)")


# Rules across two parameters, which JSON Schema cannot say: a request valid by the schema
# may still be refused by them (400, the parameter named).
PERIOD_RULES = (
    f"The period is at most {MAX_DAYS} days (`from` defaults to 6 days before `to`, `to` to "
    "today) and `to` is not before `from`; otherwise 400 naming the parameter."
)


def _described(summary: str, answer: type[BaseModel]) -> Callable[[Handler], Handler]:
    return operation(
        summary,
        query=ReportParams,
        answers={200: answer, 400: None},
        tag="reports",
        description=PERIOD_RULES,
    )


def _query(request: web.Request) -> tuple[ReportService, ReportQuery]:
    service = request.app[REPORTS]
    params = read_query(request, ReportParams)
    try:
        # The same checks as the report pages (the period's length and order among them).
        return service, parse_query(service, params.model_dump(by_alias=True, exclude_none=True))
    except BadPeriod as exc:
        log.info("reports API: bad parameter %s: %s", exc.field, exc.message)
        raise JsonError(400, "Invalid parameters", field=exc.field, detail=exc.message) from None


@routes.get(PREFIX + "/calls")
@_described("Calls over time and by source, campaign, landing page, pool or manager", CallsReport)
async def calls_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return answer(await service.calls(query.info, query.period, query.filters, query.by))


@routes.get(PREFIX + "/missed")
@_described("Missed-call recovery and manager response time", MissedReport)
async def missed_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return answer(await service.missed(query.info, query.period, query.filters))


@routes.get(PREFIX + "/leads")
@_described("Leads: created, delivered to Roistat and Metrika, pending, dead", LeadsReport)
async def leads_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return answer(await service.leads(query.info, query.period))


@routes.get(PREFIX + "/tracking")
@_described("Call tracking: pool utilisation, overload, attribution confidence", TrackingReport)
async def tracking_report(request: web.Request) -> web.Response:
    service, query = _query(request)
    return answer(await service.tracking(query.info, query.period, query.filters))
