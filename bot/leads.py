"""Wiring of the leads room: clients, sinks, the outbox worker and the Metrika batcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot import singletons
from bot.config import FileConfig, load_file_config
from bot.settings import Settings, secret
from bot.shell import Shell
from handlers.web import leads as leads_web
from handlers.web.context import LEAD_FORMS, LeadsWeb
from storage.db import Database
from storage.models import Client
from telephony.events import FanOut, LeadInfo, LeadObserver, lead_observers
from telephony.infra.clock import Clock, SystemClock
from telephony.leads import metrika, roistat
from telephony.leads.config import LeadsConfig
from telephony.leads.metrics import LeadMetrics
from telephony.leads.outbox import OutboxWorker, RetryPolicy, Sink
from telephony.leads.service import FormLead, LeadService, Sinks

log = logging.getLogger("trubka.leads")
STOP_TIMEOUT = 15.0


def leads_config(settings: Settings, file_config: FileConfig | None = None) -> LeadsConfig:
    return (file_config or load_file_config(settings)).section("leads", LeadsConfig)


def retry_policy(config: LeadsConfig) -> RetryPolicy:
    options = config.outbox
    return RetryPolicy(
        base_delay=options.base_delay,
        max_delay=options.max_delay,
        give_up_after=timedelta(hours=options.give_up_after_hours),
        lease=timedelta(seconds=options.lease_seconds),
    )


@dataclass
class Leads:
    """Everything the leads room needs at run time; `lifetime` runs its background loops."""

    config: LeadsConfig
    service: LeadService
    worker: OutboxWorker
    metrics: LeadMetrics
    roistat: roistat.RoistatClient | None = None
    metrika: metrika.MetrikaBatcher | None = None
    sweep_guard: singletons.LeaseGuard | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def guard(self, leadership: singletons.Leadership) -> None:
        """Several processes: one sweeps (at start and whenever the lease changes hands, so
        calls a dead process left undecided are decided); one uploads to Metrika. The outbox
        is shared (rows claimed with SKIP LOCKED)."""
        self.sweep_guard = leadership.guard(singletons.LEADS_SWEEP)
        self.sweep_guard.on_gain(self._sweep_soon)
        if self.metrika is not None:
            guard = leadership.guard(singletons.METRIKA_BATCHES)
            self.metrika.gate = guard.held

    def _sweep_soon(self) -> None:
        if self.config.workers:
            self._tasks.append(asyncio.create_task(self._sweep(), name="leads-sweep"))

    async def _sweep(self) -> None:
        try:
            if decided := await self.service.sweep():
                log.info("decided %s call(s) the last run left undecided", decided)
        except Exception:
            log.exception("sweeping undecided calls failed")

    def start(self) -> None:
        if not self.config.workers:
            return
        if self.worker.sinks:
            self._tasks.append(asyncio.create_task(self.worker.run(), name="outbox-worker"))
        if self.metrika is not None:
            self._tasks.append(asyncio.create_task(self.metrika.run(), name="metrika-batches"))

    async def stop(self) -> None:
        """Let the loops finish their current pass (a delivery in flight completes), then go."""
        self.worker.stop()
        if self.metrika is not None:
            self.metrika.stop()
        for task in self._tasks:
            # On timeout the task is cancelled: its rows stay leased and are retried later.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=STOP_TIMEOUT)
        self._tasks.clear()
        if self.roistat is not None:
            await self.roistat.close()
        if self.metrika is not None:
            await self.metrika.client.close()

    async def lifetime(self) -> AsyncIterator[None]:
        if self.config.workers and self.sweep_guard is None:
            await self._sweep()
        self.start()
        yield
        await self.stop()


def build_leads(
    settings: Settings,
    db: Database,
    *,
    config: LeadsConfig | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    observers: FanOut[LeadObserver] | None = None,
) -> Leads:
    config = config or leads_config(settings)
    clock = clock or SystemClock()
    policy = retry_policy(config)
    metrics = LeadMetrics(registry)
    sinks: dict[str, Sink] = {}
    roistat_client: roistat.RoistatClient | None = None
    key, api_key = secret(settings.roistat_key), secret(settings.roistat_api_key)
    if key or api_key:
        roistat_client = roistat.RoistatClient(
            settings.roistat_url,
            key,
            api_key=api_key,
            project=settings.roistat_project,
            timeout=config.roistat.timeout,
        )
        if key:
            sinks[roistat.SINK_LEAD] = roistat.RoistatLeadSink(db, roistat_client)
            sinks[roistat.SINK_MESSAGE] = roistat.RoistatMessageSink(db, roistat_client)
        if api_key and settings.roistat_project:
            sinks[roistat.SINK_CALL] = roistat.RoistatCallSink(roistat_client)
    batcher: metrika.MetrikaBatcher | None = None
    token = secret(settings.metrika_token)
    if token and settings.metrika_counter_id:
        batcher = metrika.MetrikaBatcher(
            db,
            metrika.MetrikaClient(
                settings.metrika_url,
                token,
                settings.metrika_counter_id,
                timeout=config.metrika.timeout,
            ),
            clock=clock,
            policy=policy,
            metrics=metrics,
            comment=config.metrika.comment,
            goal=config.metrika.new_goal_name,
            interval=settings.metrika_upload_interval,
            status_poll_hours=config.metrika.status_poll_hours,
        )
    worker = OutboxWorker(
        db,
        sinks,
        clock=clock,
        policy=policy,
        metrics=metrics,
        batch_size=config.outbox.batch_size,
        poll_interval=config.outbox.poll_interval,
    )
    service = LeadService(
        db,
        config,
        sinks=Sinks(
            roistat=roistat.SINK_LEAD in sinks,
            roistat_calls=roistat.SINK_CALL in sinks,
            metrika=batcher is not None,
        ),
        clock=clock,
        policy=policy,
        metrics=metrics,
        zone=settings.zone,
        worker=worker,
        observers=observers,
    )
    return Leads(config, service, worker, metrics, roistat_client, batcher)


LEADS = web.AppKey("trubka_leads", Leads)


def setup_leads(shell: Shell) -> Leads:
    """The leads room: the pipeline's `leads` step, the site forms' service. Built before the
    calls (the jobs queue shares its outbox settings); its loops start in `serve_leads`."""
    leads = build_leads(
        shell.settings,
        shell.db,
        registry=shell.web.metrics.registry,
        clock=shell.clock,
        observers=lead_observers(),
    )
    shell.app[LEADS] = leads
    shell.app[LEAD_FORMS] = LeadsWeb(leads.service)
    shell.pipeline.steps.leads = leads.service
    return leads


def serve_leads(shell: Shell, leads: Leads) -> None:
    """The form route; in background roles the sweep, outbox and Metrika loops (after the
    leadership: one process sweeps, one uploads to Metrika)."""
    if shell.role.background:
        leads.guard(shell.leadership)
        shell.app.cleanup_ctx.append(lambda _app: leads.lifetime())
    if shell.role.http:
        shell.app.add_routes(leads_web.routes)


class ScenarioLeads:
    """A scenario's `create_lead`: a real lead (queued to Roistat like a form's), source
    "scenario"; the lead service tells the lead observers itself."""

    def __init__(self, service: LeadService) -> None:
        self.service = service

    async def create_lead(
        self, client_id: int, fields: dict[str, str | bool | None], call_id: int | None = None
    ) -> LeadInfo:
        async with self.service.db.session() as session:
            client = await session.get(Client, client_id)
        if client is None:
            raise LookupError(f"client {client_id} no longer exists")

        def text(name: str) -> str | None:
            value = fields.get(name)
            return str(value) if value not in (None, "") else None

        callback = fields.get("is_need_callback")
        created = await self.service.create_form_lead(
            FormLead(
                phone=client.phone,
                name=text("name") or client.name or None,
                email=text("email"),
                comment=text("comment"),
                is_need_callback=None if callback is None else callback in (True, "1", "true"),
            ),
            source="scenario",
        )
        return LeadInfo(
            source="scenario",
            client_id=created.client_id,
            lead_id=created.lead_id,
            call_id=call_id,
            fields=fields,
        )
