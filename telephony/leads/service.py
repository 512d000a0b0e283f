"""Leads from calls (the call pipeline's `leads` step) and from site forms, queued for every
configured sink."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.leads_models import Lead
from storage.manager_queries import manager_by_login
from storage.models import Call, Client
from storage.queries import insert_or_ignore
from telephony.calls.outcome import CallOutcome
from telephony.calls.pipeline import LeadDecision
from telephony.clients import create_client, match_or_create_client
from telephony.events import CallUpdate, FanOut, LeadInfo, LeadObserver, lead_observers
from telephony.infra.clock import Clock
from telephony.leads import metrika, roistat
from telephony.leads.attribution import Attribution, call_attribution, from_lead
from telephony.leads.config import LeadsConfig
from telephony.leads.metrics import LeadMetrics
from telephony.leads.outbox import RetryPolicy, enqueue
from telephony.leads.rules import hold_seconds, is_first_time, is_targeted, rejection
from telephony.leads.templates import render
from telephony.phones import format_phone

log = logging.getLogger(__name__)
# Leads made from a site visit by the widgets: a callback request, a chat from a messenger link.
VISIT_SOURCES = ("callback", "chat")
# Built once: the lead decision runs for every push of a call (statement building and cache
# keys cost more than SQLite's work for them).
_CALL_FOR_UPDATE = select(Call).where(col(Call.id) == bindparam("call")).with_for_update()
_LEAD_OF_CALL = select(Lead).where(col(Lead.call_id) == bindparam("call"))


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
        manager = call.manager_user
        if manager:
            row = await manager_by_login(session, manager)
            if row is not None and row.name:
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
        lead_id = await insert_or_ignore(
            session,
            Lead,
            {
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
            },
        )
        if lead_id is None:
            return False
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
