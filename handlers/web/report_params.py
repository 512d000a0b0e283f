"""Query parameters shared by the report pages and `/api/v1/reports/…`:
`from`, `to` (local dates), `provider`, `pool`, `manager`, `by`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from storage.report_queries import DIMENSIONS, CallFilter, Period
from telephony.reports import BadPeriod, ReportService
from telephony.reports.models import PeriodInfo

PROVIDERS = ("megafon", "novofon")
MAX_VALUE = 200


@dataclass(frozen=True)
class ReportQuery:
    info: PeriodInfo
    period: Period
    filters: CallFilter
    by: str


def parse_query(service: ReportService, query: Mapping[str, str]) -> ReportQuery:
    """Raises BadPeriod (its `field` names the parameter) for anything a person mistyped."""
    info, period = service.period(query.get("from") or None, query.get("to") or None)
    provider = query.get("provider") or None
    if provider is not None and provider not in PROVIDERS:
        raise BadPeriod("provider", "must be megafon or novofon")
    pool, manager = query.get("pool") or None, query.get("manager") or None
    for name, value in (("pool", pool), ("manager", manager)):
        if value is not None and len(value) > MAX_VALUE:
            raise BadPeriod(name, "is too long")
    by = query.get("by") or "source"
    if by not in DIMENSIONS:
        raise BadPeriod("by", "must be one of " + ", ".join(DIMENSIONS))
    return ReportQuery(info, period, CallFilter(provider, pool, manager), by)
