"""Yandex Metrika offline calls: batched `upload_calls` CSVs, one per visitor-id type.

Calls wait in the outbox (sink "metrika", one row per call). Every upload interval the batcher
claims the due rows, groups them by visitor-id type and uploads one CSV per type; a failure
(429 included) puts the whole group back with backoff. Uploadings are polled until Metrika
finishes processing them, and LINKAGE_FAILURE is reported.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from sqlmodel import col, select

from storage.db import Database
from storage.leads_models import MetrikaUpload
from storage.models import Call
from telephony.infra.backoff import pause_after_429
from telephony.infra.clock import Clock
from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.infra.worker import Worker
from telephony.leads.attribution import Attribution
from telephony.leads.metrics import LeadMetrics
from telephony.leads.outbox import Claimed, DeliveryError, RetryPolicy, claim, complete, fail

log = logging.getLogger(__name__)

SINK = "metrika"
ID_COLUMNS = {"CLIENT_ID": "ClientId", "YCLID": "Yclid", "USER_ID": "UserId"}
COLUMNS = [
    "DateTime",
    "PhoneNumber",
    "TalkDuration",
    "HoldDuration",
    "CallMissed",
    "Tag",
    "FirstTimeCaller",
    "URL",
    "CallTrackerURL",
]
FINAL_STATUSES = frozenset({"PROCESSED", "LINKAGE_FAILURE"})
MAX_ROWS = 5000


def visitor_id(attribution: Attribution) -> tuple[str, str] | None:
    """(client_id_type, id): Metrika's ClientId first, then Direct's yclid, then a UserId."""
    if attribution.metrika_client_id:
        return "CLIENT_ID", attribution.metrika_client_id
    if attribution.yclid:
        return "YCLID", attribution.yclid
    if attribution.user_id:
        return "USER_ID", attribution.user_id
    return None


def call_row(
    call: Call,
    attribution: Attribution,
    *,
    talk: int,
    hold: int,
    missed: bool,
    tag: str,
) -> dict[str, Any] | None:
    """One CSV line of a call, or None when the call has no visitor id."""
    found = visitor_id(attribution)
    if found is None:
        return None
    id_type, value = found
    moment = call.started_at or call.created_at
    return {
        "client_id_type": id_type,
        "id": value,
        "DateTime": str(int(moment.timestamp())),
        "PhoneNumber": f"+{call.phone}" if call.phone else "",
        "TalkDuration": str(talk),
        "HoldDuration": str(hold),
        "CallMissed": "1" if missed else "0",
        "Tag": tag,
        "FirstTimeCaller": "1" if call.first_time_caller else "0",
        "URL": attribution.landing_url or "",
        "CallTrackerURL": call.record_link or "",
    }


def build_csv(id_type: str, rows: list[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([ID_COLUMNS[id_type], *COLUMNS])
    for row in rows:
        writer.writerow([row["id"], *(row[column] for column in COLUMNS)])
    return out.getvalue()


def _error(response: UpstreamResponse, what: str) -> DeliveryError:
    body = response.json()
    message = response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            message = f"{first.get('error_type')}: {first.get('message')}"
    retry_after = pause_after_429(response.headers) if response.status == 429 else None
    return DeliveryError(f"{what}: HTTP {response.status}: {message}", retry_after=retry_after)


class MetrikaClient:
    def __init__(self, url: str, token: str, counter_id: int, *, timeout: float = 30.0) -> None:
        self.http = UpstreamClient(url, timeout=timeout, name="Metrika")
        self.token = token
        self.base = f"/management/v1/counter/{counter_id}/offline_conversions"

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"OAuth {self.token}"}

    async def upload_calls(
        self, id_type: str, csv_text: str, *, comment: str, goal: str
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field(
            "file", csv_text.encode("utf-8"), filename="calls.csv", content_type="text/csv"
        )
        params = {"client_id_type": id_type, "comment": comment[:255], "new_goal_name": goal}
        try:
            response = await self.http.request(
                "POST", f"{self.base}/upload_calls", params=params, data=form, headers=self._auth
            )
        except UpstreamError as exc:
            raise DeliveryError(exc.message) from None
        if response.status != 200:
            raise _error(response, "upload_calls")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("uploading"), dict):
            raise DeliveryError(f"upload_calls: unexpected answer: {response.text[:200]}")
        uploading: dict[str, Any] = body["uploading"]
        return uploading

    async def uploading(self, uploading_id: str) -> dict[str, Any]:
        try:
            response = await self.http.request(
                "GET", f"{self.base}/calls_uploading/{uploading_id}", headers=self._auth
            )
        except UpstreamError as exc:
            raise DeliveryError(exc.message) from None
        if response.status != 200:
            raise _error(response, "calls_uploading")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("uploading"), dict):
            raise DeliveryError(f"calls_uploading: unexpected answer: {response.text[:200]}")
        result: dict[str, Any] = body["uploading"]
        return result

    async def close(self) -> None:
        await self.http.close()


class MetrikaBatcher:
    """Uploads due call rows in batches and follows the uploadings' processing."""

    def __init__(
        self,
        db: Database,
        client: MetrikaClient,
        *,
        clock: Clock,
        policy: RetryPolicy,
        metrics: LeadMetrics,
        comment: str = "trubka",
        goal: str = "Звонок",
        interval: float = 600.0,
        status_poll_hours: float = 48.0,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.policy = policy
        self.metrics = metrics
        self.comment = comment
        self.goal = goal
        self.interval = interval
        self.status_poll = timedelta(hours=status_poll_hours)
        self.rng = rng or random.Random()
        self.worker = Worker(
            "metrika-batches", self._step, idle_poll=interval, error_pause=interval
        )
        # Several processes: only the holder of the "metrika-batches" lease uploads.
        self.gate: Callable[[], bool] = lambda: True

    async def upload_due(self) -> int:
        """One batch: claim due rows, one upload per visitor-id type. Rows uploaded."""
        items = await claim(
            self.db, [SINK], now=self.clock.now(), limit=MAX_ROWS, lease=self.policy.lease
        )
        groups: dict[str, list[Claimed]] = {}
        for item in items:
            groups.setdefault(item.payload["client_id_type"], []).append(item)
        uploaded = 0
        for id_type in sorted(groups):
            group = groups[id_type]
            csv_text = build_csv(id_type, [item.payload for item in group])
            try:
                uploading = await self.client.upload_calls(
                    id_type, csv_text, comment=self.comment, goal=self.goal
                )
            except DeliveryError as exc:
                self.metrics.metrika_uploads.labels(id_type, "failed").inc()
                log.warning("Metrika upload of %s %s rows failed: %s", len(group), id_type, exc)
                for item in group:
                    now = self.clock.now()
                    status = await fail(
                        self.db, item, exc, now=now, policy=self.policy, rng=self.rng
                    )
                    if status == "dead":
                        self.metrics.dead.labels(SINK).inc()
                continue
            self.metrics.metrika_uploads.labels(id_type, "ok").inc()
            uploading_id = str(uploading.get("id", ""))
            async with self.db.session() as session:
                session.add(
                    MetrikaUpload(
                        uploading_id=uploading_id,
                        client_id_type=id_type,
                        line_count=len(group),
                        status=str(uploading.get("status", "UPLOADED")),
                        created_at=self.clock.now(),
                    )
                )
            for item in group:
                await complete(self.db, item, now=self.clock.now(), result=uploading_id)
                self.metrics.delivered.labels(SINK).inc()
            uploaded += len(group)
        return uploaded

    async def poll_statuses(self) -> list[MetrikaUpload]:
        """Ask Metrika about unfinished uploadings; returns those that changed."""
        now = self.clock.now()
        async with self.db.session() as session:
            pending = list(
                (
                    await session.exec(
                        select(MetrikaUpload).where(
                            col(MetrikaUpload.status).not_in(list(FINAL_STATUSES)),
                            col(MetrikaUpload.created_at) >= now - self.status_poll,
                        )
                    )
                ).all()
            )
        changed = []
        for upload in pending:
            try:
                answer = await self.client.uploading(upload.uploading_id)
            except DeliveryError as exc:
                log.warning("Metrika uploading %s: %s", upload.uploading_id, exc)
                continue
            status = str(answer.get("status", upload.status))
            async with self.db.session() as session:
                row = await session.get(MetrikaUpload, upload.id)
                assert row is not None
                row.checked_at = now
                if status != row.status:
                    row.status = status
                    changed.append(row)
                    if status in FINAL_STATUSES:
                        self.metrics.metrika_statuses.labels(status).inc()
                    if status == "LINKAGE_FAILURE":
                        log.error(
                            "Metrika could not link uploading %s (%s rows of %s) to visits",
                            row.uploading_id,
                            row.line_count,
                            row.client_id_type,
                        )
                session.add(row)
        return changed

    async def _step(self) -> float | None:
        if self.gate():
            await self.upload_due()
            await self.poll_statuses()
        return None

    def stop(self) -> None:
        self.worker.request_stop()

    async def run(self) -> None:
        await self.worker.run()
