"""Lead and delivery counters, registered on the app's /metrics registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LeadMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.leads = Counter(
            "trubka_leads_created",
            "Leads created, by source (call, form)",
            ["source"],
            registry=registry,
        )
        self.delivered = Counter(
            "trubka_outbox_delivered",
            "Outbox rows delivered, by sink",
            ["sink"],
            registry=registry,
        )
        self.failures = Counter(
            "trubka_outbox_failures",
            "Failed delivery attempts (to be retried), by sink",
            ["sink"],
            registry=registry,
        )
        self.dead = Counter(
            "trubka_outbox_dead", "Outbox rows given up on, by sink", ["sink"], registry=registry
        )
        self.rows = Gauge(
            "trubka_outbox_rows",
            "Outbox rows by sink and state (refreshed by the worker)",
            ["sink", "state"],
            registry=registry,
        )
        self.metrika_skipped = Counter(
            "trubka_metrika_calls_skipped",
            "Calls not uploaded to Metrika, by reason",
            ["reason"],
            registry=registry,
        )
        self.metrika_uploads = Counter(
            "trubka_metrika_uploads",
            "upload_calls requests by client_id_type and outcome",
            ["client_id_type", "outcome"],
            registry=registry,
        )
        self.metrika_statuses = Counter(
            "trubka_metrika_uploading_status",
            "Final uploading statuses seen (LINKAGE_FAILURE …)",
            ["status"],
            registry=registry,
        )
