"""The report pages: each builds its report, draws its charts and lists its tables (CSV)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel

from handlers.web.report_params import ReportQuery, parse_query
from handlers.web.reports import charts
from handlers.web.reports.csv_export import csv_response
from handlers.web.reports_api import REPORTS
from telephony.reports import BadPeriod, ReportService
from telephony.reports.models import CallsReport, LeadsReport, MissedReport, TrackingReport

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

BLUE, ORANGE, GREEN, PINK, SKY, RED, GREY = charts.PALETTE
DIMENSION_NAMES = {
    "source": "Источник",
    "campaign": "Кампания",
    "landing": "Страница входа",
    "pool": "Пул номеров",
    "manager": "Менеджер",
    "day": "День",
    "hour": "Час",
}
CONFIDENCE_NAMES = {
    "exact": "точно",
    "probable": "вероятно",
    "channel": "по каналу",
    "none": "нет",
}


@dataclass(frozen=True)
class Page:
    title: str
    build: Callable[[ReportService, ReportQuery], Awaitable[BaseModel]]
    tables: tuple[str, ...]  # attributes of the report that export to CSV
    charts: Callable[[Any], dict[str, Markup]]


async def _calls(service: ReportService, query: ReportQuery) -> BaseModel:
    return await service.calls(query.info, query.period, query.filters, query.by)


async def _missed(service: ReportService, query: ReportQuery) -> BaseModel:
    return await service.missed(query.info, query.period, query.filters)


async def _leads(service: ReportService, query: ReportQuery) -> BaseModel:
    return await service.leads(query.info, query.period)


async def _tracking(service: ReportService, query: ReportQuery) -> BaseModel:
    return await service.tracking(query.info, query.period, query.filters)


def _confidence_bar(confidence: dict[str, int]) -> Markup:
    colors = {"exact": GREEN, "probable": SKY, "channel": ORANGE, "none": GREY}
    return charts.share_bar(
        [(CONFIDENCE_NAMES[k], confidence.get(k, 0), colors[k]) for k in CONFIDENCE_NAMES],
        "Звонки по точности атрибуции",
    )


def _calls_charts(report: CallsReport) -> dict[str, Markup]:
    labels = [row.label for row in report.series]
    return {
        "series": charts.stacked_bars(
            labels,
            [
                charts.Series("отвечено", [r.answered for r in report.series], BLUE),
                charts.Series("пропущено", [r.missed for r in report.series], ORANGE),
            ],
            "Входящие звонки",
        ),
        # Calls, callbacks and chats: the last two are tied to their visit by construction.
        "confidence": _confidence_bar(report.confidence_all or report.confidence),
    }


def _missed_charts(report: MissedReport) -> dict[str, Markup]:
    labels = [row.key[8:10] + "." + row.key[5:7] for row in report.days]
    return {
        "days": charts.stacked_bars(
            labels,
            [
                charts.Series("≤15 мин", [d.within_15m for d in report.days], GREEN),
                charts.Series("≤24 ч", [d.within_24h for d in report.days], SKY),
                charts.Series("позже", [d.later for d in report.days], BLUE),
                charts.Series("клиент перезвонил", [d.called_again for d in report.days], PINK),
                charts.Series("не перезвонили", [d.never for d in report.days], RED),
            ],
            "Пропущенные звонки и что было дальше",
        )
    }


def _leads_charts(report: LeadsReport) -> dict[str, Markup]:
    labels = [row.day[8:10] + "." + row.day[5:7] for row in report.days]
    return {
        "days": charts.stacked_bars(
            labels,
            [
                charts.Series("из звонков", [d.call for d in report.days], BLUE),
                charts.Series("с форм", [d.form for d in report.days], ORANGE),
                charts.Series("другие", [d.other for d in report.days], GREY),
            ],
            "Лиды по дням",
        )
    }


def _tracking_charts(report: TrackingReport) -> dict[str, Markup]:
    pools = [pool.pool for pool in report.pools]
    hours = sorted({row.hour for row in report.hours})
    daily = report.resolution == "day"  # a long period: a point per day (its busiest hour)
    # A label at each midnight (a day); one day alone gets its hours.
    one_day = not daily and len(hours) <= 24
    labels = [
        hour[11:13] + ":00" if one_day
        else (hour[8:10] + "." + hour[5:7] if daily or hour[11:] == "00" else "")
        for hour in hours
    ]
    by_pool: dict[str, dict[str, float]] = {pool: {} for pool in pools}
    for row in report.hours:
        by_pool.setdefault(row.pool, {})[row.hour] = row.utilisation
    series = [
        charts.Series(pool, [by_pool[pool].get(hour, 0.0) for hour in hours],
                      charts.PALETTE[i % len(charts.PALETTE)])
        for i, pool in enumerate(pools)
    ]
    return {
        "utilisation": charts.lines(
            labels, series,
            "Загрузка пулов по дням (пик часа: занятых номеров ÷ номеров)" if daily
            else "Загрузка пулов по часам (пик занятых номеров ÷ номеров)",
            percent=True, threshold=0.75,
        ),
        "confidence": _confidence_bar(report.confidence),
    }


PAGES: dict[str, Page] = {
    "calls": Page("Звонки", _calls, ("rows", "series"), _calls_charts),
    "missed": Page("Пропущенные", _missed, ("days", "managers"), _missed_charts),
    "leads": Page("Лиды", _leads, ("days", "sinks", "dead"), _leads_charts),
    "tracking": Page("Коллтрекинг", _tracking, ("pools", "hours"), _tracking_charts),
}


@routes.get("/")
async def home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/reports/calls")


@routes.get(r"/{page:(calls|missed|leads|tracking)}")
async def page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["page"]
    spec = PAGES[name]
    service = request.app[REPORTS]
    error: str | None = None
    try:
        query = parse_query(service, request.query)
        status = 200
    except BadPeriod as exc:
        log.info("reports: bad parameter %s: %s", exc.field, exc.message)
        error = f"Неверный параметр {exc.field}: {exc.message}"
        query = parse_query(service, {})
        status = 400
    report = await spec.build(service, query)
    base = {k: v for k, v in request.query.items() if k != "table"}
    context = {
        "page": name,
        "pages": [(key, value.title) for key, value in PAGES.items()],
        "title": spec.title,
        "report": report,
        "charts": spec.charts(report),
        "query": query,
        "values": request.query,
        "query_string": urlencode(base),
        "options": await service.options(),
        "dimensions": DIMENSION_NAMES,
        "confidence_names": CONFIDENCE_NAMES,
        "csv": {t: f"/reports/{name}.csv?" + urlencode({**base, "table": t}) for t in spec.tables},
        "error": error,
    }
    return aiohttp_jinja2.render_template(f"{name}.html", request, context, status=status)


@routes.get(r"/{page:(calls|missed|leads|tracking)}.csv")
async def page_csv(request: web.Request) -> web.StreamResponse:
    name = request.match_info["page"]
    spec = PAGES[name]
    table = request.query.get("table", spec.tables[0])
    service = request.app[REPORTS]
    if table not in spec.tables:
        raise web.HTTPBadRequest(reason="unknown table")
    try:
        query = parse_query(service, request.query)
    except BadPeriod as exc:
        log.info("reports: bad parameter %s: %s", exc.field, exc.message)
        raise web.HTTPBadRequest(reason=f"{exc.field}: {exc.message}") from None
    report = await spec.build(service, query)
    rows = getattr(report, table)
    return csv_response(rows, f"{name}-{table}-{query.info.start}-{query.info.end}")
