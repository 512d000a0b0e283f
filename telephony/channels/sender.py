"""The channel sender: the one worker that delivers the SMS / WhatsApp queue.

Each pass claims due rows (storage.channel_queue.QUEUE), and for each, with no database
session open during the network call:
1. a row already marked `attempted_at` was being sent when its process died: it may have gone
   out, and neither SMS.ru nor the WhatsApp Cloud API takes an idempotency key, so it is NOT
   sent again; it ends "failed" with state "uncertain" and a line in the dialog says so;
2. the one rate limiter (TokenBuckets): the channel's throughput and the pair limit (one
   recipient); over budget, the row goes back, due when a token is there (not counted a try);
3. the row is marked attempted (committed), then sent;
4. sent: provider message id stored (statuses refer to it). `ChannelError`: the provider
   answered and refused, so nothing went out: retried (after its Retry-After) unless
   permanent; out of attempts or permanent, set aside "failed" with the reason in the dialog.
   A timeout or an unreadable answer (`MAYBE_SENT`), or any other failure, may have gone
   out: uncertain, as in 1.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from storage.channel_models import ChannelDelivery
from storage.channel_queue import QUEUE, set_state
from storage.db import Database
from storage.queue import RetryPolicy, Status
from telephony.channels.base import Channel, ChannelError, OutgoingMessage, TemplateRef
from telephony.channels.service import ClientChannels, channel_name
from telephony.infra.clock import Clock
from telephony.infra.ratelimit import TokenBuckets
from telephony.infra.worker import Worker

log = logging.getLogger("trubka.channels")

LEASE = timedelta(minutes=2)
BATCH = 20
POLICY = RetryPolicy(
    base_delay=5.0, max_delay=600.0, give_up_after=timedelta(hours=6), max_attempts=6
)
UNCERTAIN = "uncertain"
# Channel errors after which the message may have gone out all the same: the request timed
# out, or the provider's answer could not be read. Not retried (see the module docstring).
MAYBE_SENT = frozenset({"timeout", "bad_answer", "no_sms_id"})
UNCERTAIN_REASON = (
    "отправка прервалась (сбой процесса или сети во время запроса), сообщение могло уйти; "
    "повторно не отправляется, чтобы не отправить дважды"
)


class ChannelSender:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        service: ClientChannels,
        *,
        clock: Clock,
        throughput: Mapping[str, TokenBuckets],
        pair: Mapping[str, TokenBuckets],
        policy: RetryPolicy = POLICY,
        rng: random.Random | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.channels = channels
        self.service = service
        self.clock = clock
        self.throughput = throughput
        self.pair = pair
        self.policy = policy
        self.lease = lease  # a sender that died holds its rows this long
        self.rng = rng or random.Random()
        self.worker = Worker("channel-sender", self.step, idle_poll=30.0)
        self.gate: Any = lambda: True  # the "channel-sender" lease, when processes share a db

    def wake(self) -> None:
        self.worker.wake()

    async def step(self) -> float | None:
        if not self.gate():
            return None
        handled = await self.run_once()
        if handled >= BATCH:
            return 0
        due = await QUEUE.next_due(self.db)
        return None if due is None else max(0.05, (due - self.clock.now()).total_seconds())

    async def run_once(self) -> int:
        """One pass: claim due rows of the configured channels and settle each."""
        now = self.clock.now()
        rows = await QUEUE.claim(
            self.db,
            now=now,
            limit=BATCH,
            lease=self.lease,
            where=[QUEUE.c("kind").in_(list(self.channels))],
        )
        for row in rows:
            await self._one(row)
        return len(rows)

    async def _one(self, row: Any) -> None:
        kind = str(row.kind)
        channel = self.channels[kind]
        now = self.clock.now()
        if row.attempted_at is not None:
            await self._uncertain(row, "claimed again after an interrupted send")
            return
        wait = max(
            self.throughput[kind].wait_for(kind) if kind in self.throughput else 0.0,
            self.pair[kind].wait_for(row.address) if kind in self.pair else 0.0,
        )
        if wait > 0:
            await QUEUE.release(
                self.db,
                row.id,
                row.claim_token,
                due=now + timedelta(seconds=wait),
                attempts=row.attempts - 1,
            )
            return
        if kind in self.throughput:
            self.throughput[kind].take(kind)
        if kind in self.pair:
            self.pair[kind].take(row.address)
        if not await QUEUE.update_claimed(self.db, row.id, row.claim_token, attempted_at=now):
            return  # our lease was passed on meanwhile: the other holder settles it
        message = OutgoingMessage(
            delivery_id=row.delivery_id,
            address=row.address,
            text=row.text,
            template=_template(row.template),
        )
        try:
            result = await channel.send(message)
        except ChannelError as exc:
            if exc.code in MAYBE_SENT and not exc.permanent:
                await self._uncertain(row, f"{exc.code}: {exc.message}")
            else:
                await self._refused(row, exc)
            return
        except Exception as exc:  # the request may have reached the provider
            log.warning("channels: %s send %s interrupted: %r", kind, row.delivery_id, exc)
            await self._uncertain(row, f"{exc.__class__.__name__}: {exc}")
            return
        self.service.metrics.sends.labels(kind, "sent").inc()
        await QUEUE.complete(
            self.db,
            row.id,
            row.claim_token,
            status=Status.SENT,
            state="sent",
            provider_message_id=result.provider_message_id,
            cost=result.cost,
            sent_at=self.clock.now(),
            last_error=None,
        )

    async def _refused(self, row: Any, exc: ChannelError) -> None:
        kind = str(row.kind)
        error = f"{exc.code}: {exc.message}" if exc.code else exc.message
        if exc.retry_after is not None and kind in self.throughput:
            self.throughput[kind].cool_off(kind, exc.retry_after)
        if exc.permanent:
            status = Status.FAILED
            await QUEUE.complete(
                self.db,
                row.id,
                row.claim_token,
                status=Status.FAILED,
                state="failed",
                last_error=error[:2000],
                attempted_at=None,
            )
        else:
            # Nothing went out: the next try is a first try again (attempted_at cleared).
            await QUEUE.update_claimed(self.db, row.id, row.claim_token, attempted_at=None)
            status = await QUEUE.fail(
                self.db,
                row.id,
                row.claim_token,
                attempts=row.attempts,
                give_up_at=None,
                policy=self.policy,
                now=self.clock.now(),
                rng=self.rng,
                error=error,
                retry_after=exc.retry_after,
            )
        if status == Status.PENDING:
            self.service.metrics.sends.labels(kind, "retry").inc()
            return
        self.service.metrics.sends.labels(kind, "failed").inc()
        await _set_state(self.db, row.id, "failed")
        await self.service.delivery_ended(_snapshot(row), "failed", _reason(exc))

    async def _uncertain(self, row: Any, error: str) -> None:
        kind = str(row.kind)
        self.service.metrics.sends.labels(kind, UNCERTAIN).inc()
        changed = await QUEUE.complete(
            self.db,
            row.id,
            row.claim_token,
            status=Status.FAILED,
            state=UNCERTAIN,
            last_error=f"uncertain: {error}"[:2000],
        )
        if changed:
            log.warning(
                "channels: %s %s may have gone out; not sent again",
                channel_name(kind),
                row.delivery_id,
            )
            await self.service.delivery_ended(_snapshot(row), UNCERTAIN, UNCERTAIN_REASON)


def _reason(exc: ChannelError) -> str:
    return f"{exc.message} (код {exc.code})" if exc.code else exc.message


def _template(text: str | None) -> TemplateRef | None:
    if not text:
        return None
    data = json.loads(text)
    return TemplateRef(
        name=str(data["name"]),
        language=str(data.get("language") or "ru"),
        params=tuple(str(p) for p in data.get("params") or ()),
    )


def _snapshot(row: Any) -> ChannelDelivery:
    return ChannelDelivery(
        id=row.id,
        delivery_id=row.delivery_id,
        client_id=row.client_id,
        kind=row.kind,
        address=row.address,
    )


async def _set_state(db: Database, row_id: int, state: str) -> None:
    async with db.session() as session:
        await set_state(session, row_id, state)
