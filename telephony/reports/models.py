"""The reports' figures as pydantic models: the JSON API answers with them and the pages
render them (one shape for both)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel


class PeriodInfo(BaseModel):
    start: date  # local dates, inclusive
    end: date
    timezone: str


class Filters(BaseModel):
    provider: str | None = None
    pool: str | None = None
    manager: str | None = None


class CallFigures(BaseModel):
    key: str  # the day, hour, source … ("" when unknown)
    label: str  # how a person reads the key
    total: int
    unique: int  # distinct callers
    first_time: int  # callers with no earlier call (the lead rules' first-time flag)
    answered: int
    missed: int


class CallbackFigures(BaseModel):
    """The site's "Перезвоните мне" requests of the period."""

    requested: int = 0
    dialled: int = 0  # the PBX was asked to ring
    answered: int = 0  # the call was answered
    median_seconds_to_ring: int | None = None  # from the request to the PBX asked (dialled ones)


class WaysIn(BaseModel):
    """Calls beside the site widgets' ways in, each tied to a visit."""

    calls: int = 0  # inbound calls (the report's total)
    callbacks: int = 0  # callback requests from the site
    chats: int = 0  # chats started from the site's messenger links


class CallsReport(BaseModel):
    period: PeriodInfo
    filters: Filters
    by: str
    totals: CallFigures
    rows: list[CallFigures]
    series: list[CallFigures]  # by day (or by hour for one day): what the chart draws
    confidence: dict[str, int]  # exact / probable / channel / none (inbound calls)
    ways_in: WaysIn = WaysIn()
    # `confidence` with callbacks and chats added as exact (tied to their visit by construction).
    confidence_all: dict[str, int] = {}
    callback: CallbackFigures = CallbackFigures()


class RecoveryFigures(BaseModel):
    key: str
    missed: int
    within_15m: int
    within_24h: int
    later: int
    called_again: int
    never: int


class ManagerResponse(BaseModel):
    manager: str  # PBX login
    name: str
    answered: int
    missed: int
    callbacks: int  # first calls back after a missed call (theirs)
    median_minutes: float | None  # working minutes from the missed call to the call back
    p90_minutes: float | None


class MissedReport(BaseModel):
    period: PeriodInfo
    filters: Filters
    totals: RecoveryFigures
    days: list[RecoveryFigures]
    managers: list[ManagerResponse]
    working_hours: str


class SinkFigures(BaseModel):
    sink: str
    delivered: int
    pending: int
    retrying: int  # pending after a failed attempt
    dead: int


class DeadDelivery(BaseModel):
    id: int
    sink: str
    lead_id: int | None
    call_id: int | None
    attempts: int
    last_error: str | None
    created_at: str


class LeadDay(BaseModel):
    day: str
    call: int
    form: int
    other: int


class LeadsReport(BaseModel):
    period: PeriodInfo
    created: dict[str, int]  # by source (call, form, scenario) and "total"
    days: list[LeadDay]
    sinks: list[SinkFigures]
    dead: list[DeadDelivery]


class Recommendation(BaseModel):
    numbers: int  # enough for the busiest hour at 75%
    visits_per_day: int
    command: str  # the pool planner, for a fuller answer


class PoolFigures(BaseModel):
    pool: str
    numbers: int
    peak_live: int
    peak_utilisation: float  # 0..1 (above 1 when numbers were removed since)
    hours_over_75: int
    visits: int
    overloaded_visits: int  # shown the static number: every number was busy
    recommendation: Recommendation | None


class PoolHour(BaseModel):
    hour: str  # local `YYYY-MM-DD HH` (or `YYYY-MM-DD`: the report's resolution is "day")
    pool: str
    peak_live: int
    utilisation: float
    overloaded_visits: int


class TrackingReport(BaseModel):
    period: PeriodInfo
    # "hour" for periods up to 31 days; "day" beyond: each of `hours` is then a local day
    # (`YYYY-MM-DD`) with its busiest hour's peak and the day's overloaded visits.
    resolution: Literal["hour", "day"] = "hour"
    pools: list[PoolFigures]
    hours: list[PoolHour]
    confidence: dict[str, int]
