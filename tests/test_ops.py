"""/healthz and /metrics tell an operator when something waits: a stopped loop, a stuck queue."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from handlers.web.context import CALLS
from storage.db import Database
from storage.types import utcnow
from telephony.leads.outbox import DeliveryError, RetryPolicy, claim, enqueue, fail
from tests.conftest import AppFactory
from tests.megafon_replay import load, replay


async def test_a_dead_inbox_loop_makes_healthz_fail_with_the_reason(
    make_client: AppFactory, any_db: Database
) -> None:
    client = await make_client(any_db)
    assert (await client.get("/healthz")).status == 200
    [_writer, processor] = client.app[CALLS].inbox._tasks
    processor.cancel()
    await asyncio.sleep(0)
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["problems"] == {"inbox": "inbox-processor stopped"}
    assert body["error"] == "inbox: inbox-processor stopped"


async def test_metrics_show_backlog_age_and_set_aside_per_queue(
    make_client: AppFactory, any_db: Database
) -> None:
    client = await make_client(any_db, queue_stuck_after=30.0)
    await replay(client, load("inbound_answered")[1:])
    policy = RetryPolicy(give_up_after=timedelta(seconds=0))
    long_ago = utcnow() - timedelta(minutes=5)
    async with any_db.session() as session:
        await enqueue(session, "roistat", "lead:1", {}, now=long_ago, policy=policy)
        await enqueue(session, "roistat", "lead:2", {}, now=long_ago, policy=policy)
    [first, _] = await claim(any_db, ["roistat"], now=long_ago, limit=2, lease=policy.lease)
    await fail(
        any_db, first, DeliveryError("HTTP 500"), now=utcnow(), policy=policy, rng=random.Random(1)
    )

    text = await (await client.get("/metrics")).text()
    assert 'trubka_queue_backlog{queue="inbox"} 0.0' in text
    assert 'trubka_queue_set_aside{queue="inbox"} 0.0' in text
    assert 'trubka_queue_backlog{queue="outbox"} 1.0' in text
    assert 'trubka_queue_set_aside{queue="outbox"} 1.0' in text  # the dead one
    oldest = next(
        line
        for line in text.splitlines()
        if line.startswith('trubka_queue_oldest_due_seconds{queue="outbox"}')
    )
    assert 290 < float(oldest.split()[-1]) < 400
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["problems"]["outbox"].startswith("oldest due item waits 3")
