"""What the web handlers need from the shell: frozen services, one typed application key per
feature (`WEB`: shared; `CALLS`: PBX webhooks and the call API; `LEAD_FORMS`: site forms)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from storage.db import Database
from telephony.calls.dialing import Dialers
from telephony.calls.inbox import CallInbox
from telephony.events import CallObserver
from telephony.infra.health import HealthChecks
from telephony.leads.outbox import OutboxWorker
from telephony.leads.service import LeadService
from telephony.providers.megafon import MegafonClient
from telephony.providers.novofon import NovofonClient


class WebMetrics:
    """Prometheus counters of one application (a registry each, so tests do not share them)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "trubka_webhooks",
            "Telephony pushes by provider, command and outcome",
            ["provider", "command", "outcome"],
            registry=self.registry,
        )
        self.megafon_calls = Counter(
            "trubka_megafon_calls_requested",
            "megafon_call() requests by outcome",
            ["outcome"],
            registry=self.registry,
        )
        # Refreshed from the database on each scrape (storage/queue_stats.py).
        self.queue_backlog = Gauge(
            "trubka_queue_backlog",
            "Items waiting in a durable queue (due now or later)",
            ["queue"],
            registry=self.registry,
        )
        self.queue_oldest = Gauge(
            "trubka_queue_oldest_due_seconds",
            "How long the oldest due item of a queue has waited",
            ["queue"],
            registry=self.registry,
        )
        self.inbox_backlog = Gauge(
            "trubka_inbox_backlog",
            "Stored pushes not applied yet, per lane (live: a person waits; history: the rest)",
            ["lane"],
            registry=self.registry,
        )
        self.queue_set_aside = Gauge(
            "trubka_queue_set_aside",
            "Items a queue gave up on (set-aside pushes, dead leads, failed sends and jobs)",
            ["queue"],
            registry=self.registry,
        )


@dataclass(frozen=True)
class WebCore:
    """What every web feature shares: the database, the API token, metrics and health."""

    db: Database
    metrics: WebMetrics = field(default_factory=WebMetrics)
    api_token: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    # What /healthz asks besides the database: stuck queues, dead loops, a refused bot token.
    health: HealthChecks = field(default_factory=HealthChecks)
    # Run before /metrics answers: gauges read from the database (pool utilisation, queues).
    scrape_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class CallsWeb:
    """The PBX webhooks and the call API: the inbox, the PBX clients and their secrets."""

    db: Database
    metrics: WebMetrics
    inbox: CallInbox
    # Told about a call requested through the API (the call pipeline).
    observer: CallObserver
    pbx: MegafonClient | None = None
    megafon_crm_token: str | None = None
    novofon: NovofonClient | None = None
    novofon_secret: str | None = None
    novofon_route_to_responsible: bool = False
    novofon_calltracking_token: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    # Slow upstream work queued by webhooks (a Novofon recording's link), run off the request.
    jobs: OutboxWorker | None = None

    @property
    def dialers(self) -> Dialers:
        """Every configured PBX a manager's call can go through."""
        return Dialers(megafon=self.pbx, novofon=self.novofon)


@dataclass(frozen=True)
class LeadsWeb:
    """The site's lead forms."""

    leads: LeadService


WEB = web.AppKey("trubka_web", WebCore)
CALLS = web.AppKey("trubka_calls", CallsWeb)
LEAD_FORMS = web.AppKey("trubka_lead_forms", LeadsWeb)
