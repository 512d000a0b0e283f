"""A callback requested on the site ("Перезвоните мне"): budgets, the lead, the call's visit.

The visitor leaves a phone on a page whose visit we know. Nobody may use this to ring a
stranger's phone again and again, so every request passes, in order: the honeypot, the address
and network token buckets (the keys `/ct/v1/visit` uses), a phone of the configured countries'
plan (mobile or landline), a visit seen recently, then stored budgets (per phone a day, per site
an hour: they survive restarts and hold across processes). A refusal dials nothing.

An accepted request becomes a lead of source `callback` with the visit's source, UTM tags and
ids; the scenarios' `lead: callback` trigger places the call. When a call to that phone is
placed (`megafon_call`, any caller), `CallbackCalls` ties it to the request's visit exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import phonenumbers
from prometheus_client import CollectorRegistry, Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.leads_models import Lead
from storage.models import CallAttribution, Client
from storage.tracking_models import TrackingVisit
from storage.tracking_queries import insert_ignore
from storage.types import utcnow
from storage.widget_models import CallbackRequest
from storage.widget_queries import forget_counters, open_request, spend
from telephony.calls.pipeline import CallbackAnswered
from telephony.clients import set_variables
from telephony.events import CallUpdate
from telephony.infra.clock import Clock
from telephony.phones import InvalidPhone, normalize_phone
from telephony.tracking.confidence import Confidence, MatchedBy
from telephony.tracking.config import Limits, TrackingConfig
from telephony.tracking.guard import Holder, RequestBudget
from telephony.tracking.visitors import UTM_TAGS

log = logging.getLogger(__name__)

SOURCE = "callback"
METHOD = "callback"
# A call placed this long after the request still answers it.
ANSWERS_WITHIN = timedelta(days=2)
_DIALABLE = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


class CallbackRefused(Exception):
    """Refused: `status` 400 or 429, `reason` the metric's label, `message` the answer."""

    def __init__(self, status: int, reason: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def dialable_phone(raw: str, countries: list[str]) -> str:
    """A mobile or landline number of one of `countries`, normalized. Raises InvalidPhone."""
    phone = normalize_phone(raw)
    number = phonenumbers.parse("+" + phone, None)
    if phonenumbers.region_code_for_number(number) not in countries:
        raise InvalidPhone(f"not a number of {', '.join(countries)}")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a number of the country's plan")
    if phonenumbers.number_type(number) not in _DIALABLE:
        raise InvalidPhone("neither a mobile nor a landline number")
    return phone


@dataclass(frozen=True)
class CallbackAsk:
    visit_id: str
    phone: str
    name: str | None
    honeypot: bool  # the field people never see was filled: a robot
    holder: Holder | None  # the client's limited address and network (None: not limited)
    site: str | None  # the Origin the request came from


@dataclass(frozen=True)
class Promise:
    status: str  # "calling" or "scheduled"
    at: datetime | None = None
    request_id: int | None = None


class OpenHours(Protocol):
    """Working hours (the scenarios' `working_hours`)."""

    def is_open(self, moment: datetime) -> bool: ...

    def next_open(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class VisitLead:
    """What a lead made from a visit carries."""

    source: str
    phone: str | None
    name: str | None
    visit: TrackingVisit
    client_id: int | None = None  # the lead is this client's (a chat); else matched by phone
    external_key: str | None = None  # the same key twice is one lead


class VisitLeads(Protocol):
    """Makes a lead of a visit (the leads room: stored, queued for Roistat, told to the
    scenarios); returns (lead id, client id)."""

    async def visit_lead(self, lead: VisitLead) -> tuple[int, int | None]: ...


class CallbackMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.requests = Counter(
            "trubka_callback_requests",
            "Site callback requests by outcome (calling, scheduled, or the refusal's reason)",
            ["outcome"],
            registry=registry,
        )


def callback_budget(config: TrackingConfig) -> RequestBudget:
    """Token buckets per address and per network for `/ct/v1/callback` (no penalty: a refusal
    is its own answer)."""
    budgets = config.widgets.budgets
    return RequestBudget(
        Limits(
            requests_per_minute=budgets.requests_per_minute,
            burst=budgets.burst,
            network_requests_per_minute=budgets.network_requests_per_minute,
            network_burst=budgets.network_burst,
            penalty_minutes=0,
        )
    )


def visit_variables(visit: TrackingVisit) -> dict[str, str | None]:
    """The client variables of a visit, as call tracking sets them for a tracked call."""
    values: dict[str, str | None] = {name: getattr(visit, name) or None for name in UTM_TAGS}
    values.update(
        yclid=visit.yclid,
        metrika_client_id=visit.metrika_client_id,
        roistat_visit=visit.roistat_visit,
        landing_url=visit.landing_url,
        tracking_visit_id=visit.id,
        tracking_source=visit.source,
    )
    return values


class CallbackDesk:
    """`POST /ct/v1/callback` without the HTTP."""

    def __init__(
        self,
        db: Database,
        config: TrackingConfig,
        leads: VisitLeads,
        hours: OpenHours,
        *,
        zone: ZoneInfo,
        clock: Clock,
        metrics: CallbackMetrics,
    ) -> None:
        self.db = db
        self.config = config
        self.leads = leads
        self.hours = hours
        self.zone = zone
        self.clock = clock  # working hours (the scenarios' clock)
        self.metrics = metrics
        self.budget = callback_budget(config)

    def _refuse(self, status: int, reason: str, message: str, retry: int = 0) -> CallbackRefused:
        self.metrics.requests.labels(reason).inc()
        log.info("callback refused: %s", reason)
        return CallbackRefused(status, reason, message, retry)

    async def request(self, ask: CallbackAsk) -> Promise:
        """Raises CallbackRefused; nothing is stored or dialled then."""
        if ask.honeypot:
            raise self._refuse(400, "honeypot", "Request refused")
        admission = self.budget.admit(ask.holder)
        if admission.retry_after:
            reason = "network" if admission.network_refused else "address"
            raise self._refuse(429, reason, "Too many requests", admission.retry_after)
        widgets = self.config.widgets
        try:
            phone = dialable_phone(ask.phone, widgets.countries)
        except InvalidPhone:
            raise self._refuse(400, "phone_invalid", "Invalid phone") from None
        now = self.clock.now()  # the leads' and scenarios' clock: requests, budgets, reports
        max_age = timedelta(minutes=widgets.budgets.visit_max_age_minutes)
        async with self.db.session() as session:
            visit = await session.get(TrackingVisit, ask.visit_id)
            if visit is None:
                raise self._refuse(400, "visit_unknown", "Unknown visit")
            if utcnow() - visit.last_seen_at > max_age:  # the visits' own clock
                raise self._refuse(400, "visit_stale", "Visit too old")
            pending = await open_request(session, phone, now - ANSWERS_WITHIN)
            if pending is not None and pending.due_at is not None and pending.due_at > now:
                # Already promised for later: asking again changes nothing (one call, no budget).
                self.metrics.requests.labels("duplicate").inc()
                return Promise("scheduled", pending.due_at, pending.id)
            refusal = await self._spend(session, phone, ask.site, now)
            if refusal is not None:
                # The session rolls back: a refused request spends no other budget.
                raise self._refuse(429, refusal, "Too many requests", 3600)
            promise = self._promise(now)
            request = CallbackRequest(
                visit_id=visit.id,
                site=ask.site,
                phone=phone,
                status=promise.status,
                requested_at=now,
                due_at=promise.at,
            )
            session.add(request)
            await session.flush()
            request_id = request.id
        lead_id, client_id = await self.leads.visit_lead(VisitLead(SOURCE, phone, ask.name, visit))
        async with self.db.session() as session:
            stored = await session.get(CallbackRequest, request_id)
            if stored is not None:
                stored.lead_id = lead_id
                session.add(stored)
            client = await session.get(Client, client_id) if client_id is not None else None
            if client is not None:
                await set_variables(session, client, visit_variables(visit))
        self.metrics.requests.labels(promise.status).inc()
        return Promise(promise.status, promise.at, request_id)

    def _promise(self, moment: datetime) -> Promise:
        if self.hours.is_open(moment):
            return Promise("calling")
        return Promise("scheduled", self.hours.next_open(moment))

    async def _spend(
        self, session: AsyncSession, phone: str, site: str | None, now: datetime
    ) -> str | None:
        """Spend the stored budgets; the first one spent names the refusal."""
        budgets = self.config.widgets.budgets
        local = now.astimezone(self.zone)
        day = datetime.combine(local.date(), time(), self.zone)
        hour = now.replace(minute=0, second=0, microsecond=0)
        await forget_counters(session, now - timedelta(days=2))
        if budgets.per_phone_per_day and not await spend(
            session, f"phone:{phone}", day, budgets.per_phone_per_day
        ):
            return "phone"
        if budgets.per_site_per_hour and not await spend(
            session, f"site:{(site or '-')[:100]}", hour, budgets.per_site_per_hour
        ):
            return "site"
        return None


class CallbackCalls:
    """The call pipeline's `callback` step: a call placed to a phone with an open callback
    request answers it — the call is attributed to the request's visit (exact, matched by
    callback) and joins its lead, so its end reaches Roistat and Metrika with the visit. Runs
    before the leads step, in the transaction that stored the call."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def decide(self, session: AsyncSession, update: CallUpdate) -> CallbackAnswered:
        call = update.call
        if update.trigger != "requested" or call.id is None or not call.phone:
            return CallbackAnswered()
        now = self._clock.now()
        request = await open_request(session, call.phone, now - ANSWERS_WITHIN)
        if request is None:
            return CallbackAnswered()
        request.call_id = call.id
        request.status = "dialled"
        request.dialled_at = now
        session.add(request)
        visit = await session.get(TrackingVisit, request.visit_id) if request.visit_id else None
        if visit is not None:
            await insert_ignore(session, CallAttribution, _attribution(call.id, visit, now))
        lead = await session.get(Lead, request.lead_id) if request.lead_id else None
        if lead is not None and lead.call_id is None:
            lead.call_id = call.id
            session.add(lead)
        await session.flush()
        return CallbackAnswered(request.id)

    async def committed(self, update: CallUpdate, result: CallbackAnswered) -> None:
        if result.request_id is not None:
            log.info("callback %s answered by call %s", result.request_id, update.call.id)


def _attribution(call_id: int, visit: TrackingVisit, now: datetime) -> dict[str, object]:
    return {
        "call_id": call_id,
        "method": METHOD,
        "visit_id": visit.id,
        "channel_level": False,
        "source": visit.source,
        "utm_source": visit.utm_source,
        "utm_medium": visit.utm_medium,
        "utm_campaign": visit.utm_campaign,
        "utm_content": visit.utm_content,
        "utm_term": visit.utm_term,
        "yclid": visit.yclid,
        "metrika_client_id": visit.metrika_client_id,
        "roistat_visit": visit.roistat_visit,
        "ga_client_id": visit.ga_client_id,
        "landing_url": visit.landing_url,
        "referrer": visit.referrer,
        "confidence": Confidence.EXACT.value,
        "matched_by": MatchedBy.CALLBACK.value,
        "created_at": now,
    }
