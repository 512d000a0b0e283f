"""Leads from calls (the call pipeline's `leads` step) and from site forms, queued for every
configured sink."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy import update as sql_update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.db import Database
from storage.leads_models import Lead
from storage.manager_queries import manager_by_login, managers_by_login
from storage.models import Call, Client, Manager
from storage.queries import insert_many_or_ignore, insert_or_ignore
from telephony.calls.outcome import CallOutcome
from telephony.calls.pipeline import LeadDecision
from telephony.clients import create_client, match_or_create_client
from telephony.events import CallUpdate, FanOut, LeadInfo, LeadObserver, lead_observers
from telephony.infra.clock import Clock
from telephony.leads import metrika, roistat
from telephony.leads.attribution import (
    Attribution,
    call_attribution,
    call_attributions,
    from_lead,
)
from telephony.leads.config import LeadsConfig
from telephony.leads.metrics import LeadMetrics
from telephony.leads.outbox import RetryPolicy, enqueue
from telephony.leads.rules import (
    first_time_many,
    hold_seconds,
    is_first_time,
    is_targeted,
    rejection,
)
from telephony.leads.templates import render
from telephony.phones import format_phone

log = logging.getLogger(__name__)
# Leads made from a site visit by the widgets: a callback request, a chat from a messenger link.
VISIT_SOURCES = ("callback", "chat")
# Built once: the lead decision runs for every push of a call (statement building and cache
# keys cost more than SQLite's work for them).
_CALL_FOR_UPDATE = select(Call).where(col(Call.id) == bindparam("call")).with_for_update()
_LEAD_OF_CALL = select(Lead).where(col(Lead.call_id) == bindparam("call"))


# The flags the lead decision sets, for a round of calls (executemany).
_CALLS = Call.__table__  # type: ignore[attr-defined]
_SET_FLAGS = (
    sql_update(_CALLS)
    .where(_CALLS.c.id == bindparam("b_id"))
    .values(first_time_caller=bindparam("b_first"), targeted=bindparam("b_targeted"))
)
_LEADS_OF_CALLS = (
    select(Lead)
    .where(among_param(col(Lead.call_id), "calls"))
    .order_by(col(Lead.id))
)


async def _leads_of(session: AsyncSession, calls: Sequence[Call]) -> dict[int, Lead]:
    """The lead of each call that has one (the oldest, should a call have several)."""
    ids = [call.id for call in calls if call.id is not None]
    rows = await session.exec(_LEADS_OF_CALLS, params={"calls": ids})
    found: dict[int, Lead] = {}
    for lead in rows.all():
        if lead.call_id is not None:
            found.setdefault(lead.call_id, lead)
    return found


@dataclass
class _Plan:
    """One change of a round as the lead decision sees it."""

    update: CallUpdate
    ended: bool
    lead: Lead | None
    attribution: Attribution
    variables: dict[str, str | None]
    inserting: bool = False


@dataclass(frozen=True)
class Sinks:
    """Which sinks are configured (a sink without credentials gets nothing queued)."""

    roistat: bool = False
    roistat_calls: bool = False
    metrika: bool = False


@dataclass(frozen=True)
class FormLead:
    phone: str | None = None
    name: str | None = None
    email: str | None = None
    comment: str | None = None
    is_need_callback: bool | None = None
    roistat_visit: str | None = None
    metrika_client_id: str | None = None
    yclid: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    landing_url: str | None = None
    referrer: str | None = None
    external_key: str | None = None


@dataclass(frozen=True)
class CreatedLead:
    lead_id: int
    client_id: int | None
    created: bool


class Wakeable(Protocol):
    def wake(self) -> None: ...


class LeadService:
    def __init__(
        self,
        db: Database,
        config: LeadsConfig,
        *,
        sinks: Sinks,
        clock: Clock,
        policy: RetryPolicy,
        metrics: LeadMetrics,
        zone: ZoneInfo,
        worker: Wakeable | None = None,
        observers: FanOut[LeadObserver] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.sinks = sinks
        self.clock = clock
        self.policy = policy
        self.metrics = metrics
        self.zone = zone
        self.worker = worker
        # Told about each new lead after its commit (the scenarios' `lead` trigger).
        self.observers = observers if observers is not None else lead_observers()

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    # -- calls ---------------------------------------------------------------------------------

    async def decide(self, session: AsyncSession, update: CallUpdate) -> LeadDecision:
        """Flags, lead and deliveries of a call, in the caller's transaction (the call inbox's:
        the push and its lead commit together). Waking and telling observers come after."""
        if not self._wants(update):
            return LeadDecision()
        assert update.call.id is not None
        new_leads: list[LeadInfo] = []
        ended = update.trigger == "history"
        queued = await self._on_call(
            session, update.call.id, ended=ended, new_leads=new_leads, loaded=update.call
        )
        return LeadDecision(queued, tuple(new_leads))

    async def decide_many(
        self, session: AsyncSession, updates: Sequence[CallUpdate]
    ) -> list[LeadDecision]:
        """`decide` for a round of changes (each call once, its fields current: the call need
        not be in the session): the round's leads, attributions, first-caller checks and
        managers in one query each, the flags and the new leads written set-wise."""
        wanted = [update for update in updates if self._wants(update)]
        if not wanted:
            return [LeadDecision() for _ in updates]
        now = self.clock.now()
        calls = [update.call for update in wanted]
        leads = await _leads_of(session, calls)
        deciding = [
            update
            for update in wanted
            if update.call.direction == "in" or update.call.id in leads
        ]
        decided_calls = [update.call for update in deciding]
        await self._write_flags(session, deciding, now)
        attributions = await call_attributions(
            session, decided_calls, now=now, form_days=self.config.form_attribution_days
        )
        logins = {call.manager_user for call in decided_calls if call.manager_user}
        managers = await managers_by_login(session, logins)
        plans: list[_Plan] = []
        for update in deciding:
            call = update.call
            assert call.id is not None
            attribution = attributions[call.id]
            manager = managers.get(call.manager_user or "")
            plans.append(
                _Plan(
                    update,
                    ended=update.trigger == "history",
                    lead=leads.get(call.id),
                    attribution=attribution,
                    variables=self._variables(call, attribution, manager),
                )
            )
        inserted = await self._insert_leads(session, plans, now)
        results: dict[int, LeadDecision] = {}
        for plan in plans:
            call = plan.update.call
            new_leads: list[LeadInfo] = []
            queued = False
            if plan.inserting:
                assert call.id is not None
                lead_id = inserted.get(call.id)
                if lead_id is not None:
                    queued |= await self._lead_made(
                        session, call, lead_id, plan.attribution, plan.variables, new_leads
                    )
            elif plan.lead is not None:
                queued |= await self._append_update(
                    session, plan.lead, call, plan.variables, now
                )
            if plan.ended:
                queued |= await self._ended(
                    session, call, plan.attribution, lead_made=plan.lead is not None
                )
            results[id(plan.update)] = LeadDecision(queued, tuple(new_leads))
        return [results.get(id(update), LeadDecision()) for update in updates]

    async def _write_flags(
        self, session: AsyncSession, updates: Sequence[CallUpdate], now: datetime
    ) -> None:
        """first_time_caller (once) and targeted (at the end) of the calls, with Core in one
        statement, and on the call objects (never left to an ORM flush: they may be detached)."""
        unknown = [update.call for update in updates if update.call.first_time_caller is None]
        first = await first_time_many(session, unknown, self.config, now=now) if unknown else {}
        rows: list[dict[str, object]] = []
        for update in updates:
            call = update.call
            assert call.id is not None
            first_time = first.get(call.id, call.first_time_caller)
            targeted = call.targeted
            if update.trigger == "history":
                targeted = is_targeted(call, self.config)
            if first_time == call.first_time_caller and targeted == call.targeted:
                continue
            rows.append({"b_id": call.id, "b_first": first_time, "b_targeted": targeted})
            set_committed_value(call, "first_time_caller", first_time)
            set_committed_value(call, "targeted", targeted)
        if rows:
            await session.exec(_SET_FLAGS, params=rows)

    async def _insert_leads(
        self, session: AsyncSession, plans: list[_Plan], now: datetime
    ) -> dict[int, int]:
        """The new call leads of the round in one multi-row INSERT; call id → new lead id."""
        rows: list[dict[str, object]] = []
        for plan in plans:
            call = plan.update.call
            if plan.lead is not None or not (plan.ended or self.config.create_on == "start"):
                continue
            reason = rejection(call, plan.attribution, self.config, ended=plan.ended)
            if reason is not None:
                log.debug("call %s is not a lead: %s", call.id, reason)
                continue
            plan.inserting = True
            rows.append(self._lead_row(call, plan.attribution))
        made = await insert_many_or_ignore(session, Lead, rows, ("call_id", "id"))
        return {int(call_id): int(lead_id) for call_id, lead_id in made}

    async def committed(self, update: CallUpdate, result: LeadDecision) -> None:
        """Wake the outbox worker for the queued deliveries; tell the lead observers."""
        if result.queued:
            self._wake()
        for lead in result.new_leads:
            await self._tell(lead)

    async def _tell(self, lead: LeadInfo) -> None:
        await self.observers.tell(lambda observer: observer.lead_created(lead))

    def _wants(self, update: CallUpdate) -> bool:
        call = update.call
        if call.id is None or (call.internal and self.config.skip_internal):
            return False
        # Before the history nothing is decided (it alone carries status and record).
        return update.trigger == "history" or self.config.create_on != "end"

    async def sweep(self, *, window: timedelta = timedelta(hours=1)) -> int:
        """Decide ended calls the observer never saw (the process stopped between the webhook's
        commit and the observer). Run at start; the number of calls decided."""
        since = self.clock.now() - window
        async with self.db.session() as session:
            ids = (
                await session.exec(
                    select(Call.id).where(
                        col(Call.ended).is_(True),
                        col(Call.status).is_not(None),
                        col(Call.targeted).is_(None),
                        Call.direction == "in",
                        col(Call.updated_at) >= since,
                    )
                )
            ).all()
        queued = False
        new_leads: list[LeadInfo] = []
        for call_id in ids:
            if call_id is None:
                continue
            async with self.db.session() as session:
                queued |= await self._on_call(session, call_id, ended=True, new_leads=new_leads)
        if queued:
            self._wake()
        for lead in new_leads:
            await self._tell(lead)
        return len(ids)

    async def _on_call(
        self,
        session: AsyncSession,
        call_id: int,
        *,
        ended: bool,
        new_leads: list[LeadInfo],
        loaded: Call | None = None,
    ) -> bool:
        """Decide a call (flags, lead, updates); a new lead is added to `new_leads`. `loaded`:
        the call as this transaction already holds it (locked when it was loaded), if so."""
        now = self.clock.now()
        call = loaded if loaded is not None and loaded in session else None
        if call is None:
            call = (await session.exec(_CALL_FOR_UPDATE, params={"call": call_id})).first()
        if call is None:
            return False
        if call.direction != "in" and not await self._answers_a_lead(session, call_id):
            return False
        if call.first_time_caller is None:
            call.first_time_caller = await is_first_time(session, call, self.config, now=now)
        if ended:
            call.targeted = is_targeted(call, self.config)
        session.add(call)
        await session.flush()

        lead = (await session.exec(_LEAD_OF_CALL, params={"call": call_id})).first()
        attribution = await call_attribution(
            session, call, now=now, form_days=self.config.form_attribution_days
        )
        variables = await self._call_variables(session, call, attribution)
        queued = False
        if lead is None and (ended or self.config.create_on == "start"):
            reason = rejection(call, attribution, self.config, ended=ended)
            if reason is None:
                queued |= await self._call_lead(
                    session, call, attribution, variables, now, new_leads
                )
            else:
                log.debug("call %s is not a lead: %s", call.id, reason)
        elif lead is not None:
            queued |= await self._append_update(session, lead, call, variables, now)
        if ended:
            queued |= await self._ended(session, call, attribution, lead_made=lead is not None)
        return queued

    async def _answers_a_lead(self, session: AsyncSession, call_id: int) -> bool:
        """An outbound call made for a lead (a site callback: its call joins the lead), so its
        status, record and end are reported like an inbound call's."""
        return (await session.exec(_LEAD_OF_CALL, params={"call": call_id})).first() is not None

    async def _call_variables(
        self, session: AsyncSession, call: Call, attribution: Attribution
    ) -> dict[str, str | None]:
        row = await manager_by_login(session, call.manager_user) if call.manager_user else None
        return self._variables(call, attribution, row)

    def _variables(
        self, call: Call, attribution: Attribution, row: Manager | None
    ) -> dict[str, str | None]:
        manager = call.manager_user
        if manager and row is not None and row.name:
            manager = row.name
        moment = (call.started_at or call.created_at).astimezone(self.zone)
        return {
            **attribution.variables(),
            "caller": call.phone,
            "phone": call.phone,
            "callee": call.diversion,
            "callDate": moment.strftime("%Y-%m-%d %H:%M:%S"),
            "recordLink": call.record_link,
            "manager": manager,
            "duration": str(call.duration) if call.duration is not None else None,
            "talkDuration": (
                str(CallOutcome.of(call).talk_seconds) if call.status is not None else None
            ),
            "status": call.status,
            "direction": call.direction,
            "leadSource": "call",
        }

    async def _call_lead(
        self,
        session: AsyncSession,
        call: Call,
        attribution: Attribution,
        variables: Mapping[str, str | None],
        now: object,
        new_leads: list[LeadInfo],
    ) -> bool:
        assert call.id is not None
        lead_id = await insert_or_ignore(session, Lead, self._lead_row(call, attribution))
        if lead_id is None:
            return False
        return await self._lead_made(session, call, lead_id, attribution, variables, new_leads)

    def _lead_row(self, call: Call, attribution: Attribution) -> dict[str, object]:
        return {
            "source": "call",
            "call_id": call.id,
            "client_id": call.client_id,
            "phone": call.phone,
            "roistat_visit": attribution.roistat_visit,
            "metrika_client_id": attribution.metrika_client_id,
            "yclid": attribution.yclid,
            "utm_source": attribution.utm_source,
            "utm_medium": attribution.utm_medium,
            "utm_campaign": attribution.utm_campaign,
            "utm_content": attribution.utm_content,
            "utm_term": attribution.utm_term,
            "landing_url": attribution.landing_url,
            "referrer": attribution.referrer,
            "reported_status": call.status,
            "reported_record_link": call.record_link,
            "created_at": self.clock.now(),
        }

    async def _lead_made(
        self,
        session: AsyncSession,
        call: Call,
        lead_id: int,
        attribution: Attribution,
        variables: Mapping[str, str | None],
        new_leads: list[LeadInfo],
    ) -> bool:
        """A call lead was stored: count it, tell its observers later, queue it for Roistat."""
        assert call.id is not None
        self.metrics.leads.labels("call").inc()
        new_leads.append(
            LeadInfo(source="call", client_id=call.client_id, lead_id=lead_id, call_id=call.id)
        )
        if not self.sinks.roistat:
            return False
        params = roistat.lead_params(
            self.config.roistat,
            variables=variables,
            attribution=attribution,
            form=False,
            phone=call.phone,
        )
        await enqueue(
            session,
            roistat.SINK_LEAD,
            f"lead:{lead_id}",
            {"params": params},
            now=self.clock.now(),
            policy=self.policy,
            lead_id=lead_id,
            call_id=call.id,
        )
        return True

    async def _append_update(
        self,
        session: AsyncSession,
        lead: Lead,
        call: Call,
        variables: Mapping[str, str | None],
        now: object,
    ) -> bool:
        """The recording or the final status came after the lead: append it in Roistat."""
        changed = (call.status is not None and call.status != lead.reported_status) or (
            call.record_link is not None and call.record_link != lead.reported_record_link
        )
        if not changed:
            return False
        lead.reported_status = call.status
        lead.reported_record_link = call.record_link
        session.add(lead)
        if not (self.sinks.roistat and self.config.roistat.append_updates):
            return False
        fingerprint = hashlib.sha1(
            f"{call.status}|{call.record_link}".encode(), usedforsecurity=False
        ).hexdigest()[:16]
        await enqueue(
            session,
            roistat.SINK_MESSAGE,
            f"lead:{lead.id}:{fingerprint}",
            {
                "title": render(self.config.roistat.message_title, variables),
                "message": render(self.config.roistat.message, variables),
            },
            now=self.clock.now(),
            policy=self.policy,
            lead_id=lead.id,
            call_id=call.id,
        )
        return True

    async def _ended(
        self, session: AsyncSession, call: Call, attribution: Attribution, *, lead_made: bool
    ) -> bool:
        """Per-call sinks: Roistat call tracking and Metrika's offline calls."""
        assert call.id is not None
        queued = False
        if call.internal or not call.phone or call.phone in self.config.skip_numbers:
            return False
        outcome = CallOutcome.of(call)
        if self.sinks.roistat_calls:
            body = roistat.phone_call_body(call, attribution, talk=outcome.talk_seconds)
            queued |= (
                await enqueue(
                    session,
                    roistat.SINK_CALL,
                    f"call:{call.id}",
                    {"call": body},
                    now=self.clock.now(),
                    policy=self.policy,
                    call_id=call.id,
                )
                is not None
            )
        if self.sinks.metrika:
            is_lead = (
                lead_made
                or (await session.exec(select(Lead.id).where(Lead.call_id == call.id))).first()
                is not None
            )
            if self.config.metrika.calls == "leads" and not is_lead:
                return queued
            tag = render(self.config.metrika.tag, attribution.variables(), keep_unknown=False)
            row = metrika.call_row(
                call,
                attribution,
                talk=outcome.talk_seconds,
                hold=hold_seconds(call),
                # Metrika's CallMissed: no conversation (an ACCEPTED voicemail is missed too).
                missed=not outcome.answered,
                tag=tag,
            )
            if row is None:
                self.metrics.metrika_skipped.labels("no_visitor_id").inc()
            else:
                await enqueue(
                    session,
                    metrika.SINK,
                    f"call:{call.id}",
                    row,
                    now=self.clock.now(),
                    policy=self.policy,
                    call_id=call.id,
                )
        return queued

    # -- site forms ------------------------------------------------------------------------------

    async def create_form_lead(
        self, form: FormLead, *, source: str = "form", client_id: int | None = None
    ) -> CreatedLead:
        """A lead from a site form (or, with source "scenario", a scenario's create_lead; with
        `client_id`, of that client: a chat started from a site visit)."""
        async with self.db.session() as session:
            if form.external_key:
                existing = (
                    await session.exec(select(Lead).where(Lead.external_key == form.external_key))
                ).first()
                if existing is not None and existing.id is not None:
                    return CreatedLead(existing.id, existing.client_id, created=False)
            if client_id is not None:
                known = await session.get(Client, client_id)
                if known is None:
                    raise LookupError(f"client {client_id} no longer exists")
                client = known
            elif form.phone:
                client, created = await match_or_create_client(session, form.phone)
                if created and form.name:
                    client.name = form.name[:300]
                    session.add(client)
            else:
                client = await create_client(session, name=(form.name or "")[:300])
            lead = Lead(
                source=source,
                client_id=client.id,
                external_key=form.external_key,
                phone=client.phone,
                name=form.name,
                email=form.email,
                comment=form.comment,
                is_need_callback=form.is_need_callback,
                roistat_visit=form.roistat_visit,
                metrika_client_id=form.metrika_client_id,
                yclid=form.yclid,
                utm_source=form.utm_source,
                utm_medium=form.utm_medium,
                utm_campaign=form.utm_campaign,
                utm_content=form.utm_content,
                utm_term=form.utm_term,
                landing_url=form.landing_url,
                referrer=form.referrer,
                created_at=self.clock.now(),
            )
            session.add(lead)
            await session.flush()
            assert lead.id is not None
            # Site widgets' leads (callback, chat) are counted as themselves; the rest as forms.
            kind = source if source in VISIT_SOURCES else "form"
            self.metrics.leads.labels(kind).inc()
            queued = False
            if self.config.forms and self.sinks.roistat:
                attribution = from_lead(lead)
                variables = {
                    **attribution.variables(),
                    "phone": format_phone(lead.phone) if lead.phone else None,
                    "caller": lead.phone,
                    "name": lead.name,
                    "email": lead.email,
                    "comment": lead.comment,
                    "leadSource": kind,
                }
                params = roistat.lead_params(
                    self.config.roistat,
                    variables=variables,
                    attribution=attribution,
                    form=True,
                    name=lead.name,
                    email=lead.email,
                    phone=lead.phone,
                    is_need_callback=lead.is_need_callback,
                )
                queued = (
                    await enqueue(
                        session,
                        roistat.SINK_LEAD,
                        f"lead:{lead.id}",
                        {"params": params},
                        now=self.clock.now(),
                        policy=self.policy,
                        lead_id=lead.id,
                    )
                    is not None
                )
            result = CreatedLead(lead.id, client.id, created=True)
        if queued:
            self._wake()
        await self._tell(
            LeadInfo(
                source=source,
                client_id=result.client_id,
                lead_id=result.lead_id,
                fields={
                    "name": form.name,
                    "email": form.email,
                    "comment": form.comment,
                    "is_need_callback": form.is_need_callback,
                    "utm_source": form.utm_source,
                    "utm_medium": form.utm_medium,
                    "utm_campaign": form.utm_campaign,
                    "utm_content": form.utm_content,
                    "utm_term": form.utm_term,
                },
            )
        )
        return result
