"""Telegram deliveries on the queue engine (storage.queue), on SQLite and PostgreSQL, against
the fake Bot API: a pass claims exactly the batch it chose; a crashed sender's rows come back
after its lease; a finisher whose claim passed on changes nothing; failed sends back off by the
`RetryPolicy` and die after the max tries; a 429 is a wait, not a try.

The sender and the fake Bot API share a fake clock: leases, backoffs and 429 waits pass when the
test (or the sender's own wait) moves it, never in real time."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from bot.telegram.budgets import BudgetRates, Budgets
from bot.telegram.sender import Sender
from bot.telegram.status import SendStatus
from storage import telegram_queue
from storage.db import Database
from storage.models import Client
from storage.queue import Status
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import MAX_ATTEMPTS, Outgoing
from telephony.infra.clock import FakeClock
from tests.conftest import TELEGRAM_SCALE
from tests.fakes.telegram import TOKEN, FakeTelegram

CHAT = 777  # a manager's private chat
GROUP = -100777


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def clock(fake_telegram: FakeTelegram) -> FakeClock:
    fake_telegram.clock = clock = FakeClock()
    return clock


@pytest.fixture
async def sender(
    any_db: Database, fake_telegram: FakeTelegram, registry: CollectorRegistry, clock: FakeClock
) -> AsyncIterator[Sender]:
    """The real send scheduler on `any_db`, its budgets scaled like the fake Bot API's limits,
    on the fake Bot API's clock."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.url)))
    sender = Sender(
        bot,
        any_db,
        managers_chat_id=GROUP,
        zone=ZoneInfo("UTC"),
        budgets=Budgets(BudgetRates(time_scale=TELEGRAM_SCALE), clock=clock),
        status=SendStatus(registry),
        clock=clock,
    )
    yield sender
    await bot.session.close()


async def _enqueue(db: Database, clock: FakeClock, *texts: str) -> list[int]:
    """Deliveries due now on the fake clock."""
    async with db.session() as session:
        rows = [
            telegram_queue.enqueue(
                session, Outgoing(target="chat", chat_id=CHAT, text=text, due_at=clock.now())
            )
            for text in texts
        ]
        await session.flush()
        return [row.id for row in rows if row.id is not None]


async def _stored(db: Database, delivery_id: int) -> TelegramDelivery:
    async with db.read() as session:
        row = await session.get(TelegramDelivery, delivery_id)
    assert row is not None
    return row


@dataclass
class _Passes:
    passes: int = 0


def _count_passes(sender: Sender) -> _Passes:
    """Count the sender's passes (a pass reads the queue: what coalescing saves)."""
    counted = _Passes()
    real_pass = sender._pass

    async def counting(*, include_scheduled: bool = True) -> float | None:
        counted.passes += 1
        return await real_pass(include_scheduled=include_scheduled)

    sender._pass = counting  # type: ignore[method-assign]
    return counted


def _outcome(registry: CollectorRegistry, outcome: str) -> float | None:
    """The `trubka_telegram_deliveries_total{outcome=...}` figure of /metrics."""
    return registry.get_sample_value("trubka_telegram_deliveries_total", {"outcome": outcome})


async def test_a_delivery_claimed_by_a_sender_that_died_is_sent_by_the_next_pass(
    any_db: Database, sender: Sender, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    first, second = await _enqueue(any_db, clock, "первое", "второе")
    # Another sender claimed the first one and died before settling it.
    [row, _] = await telegram_queue.candidates(any_db, 10)
    [dead] = await telegram_queue.claim(
        any_db, [row], lease=timedelta(seconds=0.5), now=clock.now()
    )
    assert dead.id == first and dead.status == Status.RUNNING and dead.claim_token

    await sender.drain()  # while its lease runs the chat waits: nothing overtakes it
    assert fake_telegram.texts_in(CHAT, None) == []
    assert (await _stored(any_db, second)).status == Status.PENDING

    clock.advance(0.6)  # the lease has passed
    await sender.drain()
    assert fake_telegram.texts_in(CHAT, None) == ["первое", "второе"]
    stored = await _stored(any_db, first)
    assert (stored.status, stored.claim_token, stored.lease_until) == (Status.SENT, None, None)
    assert stored.attempts == 2  # the dead sender's claim counted as a try
    assert stored.sent_message_id == fake_telegram.in_thread(CHAT, None)[0].message_id


async def test_a_finisher_whose_claim_passed_on_changes_nothing(
    any_db: Database, sender: Sender, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    [delivery_id] = await _enqueue(any_db, clock, "одно")
    [mine] = await telegram_queue.claim(
        any_db,
        await telegram_queue.candidates(any_db, 10),
        lease=timedelta(seconds=0.05),
        now=clock.now(),
    )
    stale_token = mine.claim_token
    clock.advance(0.1)
    # The next sender claims it again (a fresh token), and is sending it now.
    [theirs] = await telegram_queue.claim(
        any_db,
        await telegram_queue.candidates(any_db, 10),
        lease=timedelta(minutes=1),
        now=clock.now(),
    )
    assert theirs.claim_token != stale_token and mine.claim_token == stale_token

    assert await telegram_queue.sent(any_db, [mine], 4242) == 0
    assert await telegram_queue.release(any_db, [mine], due=clock.now()) == 0
    assert not await telegram_queue.finish(any_db, mine, Status.FAILED, "too late")
    await telegram_queue.retry(
        any_db, mine, policy=sender.pacing.policy(), rng=Random(1), error="too late"
    )
    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.claim_token, stored.error) == (
        Status.RUNNING,
        theirs.claim_token,
        None,
    )
    assert stored.attempts == 2 and stored.sent_message_id is None

    assert await telegram_queue.sent(any_db, [theirs], 4243) == 1
    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.sent_message_id, stored.claim_token) == (Status.SENT, 4243, None)
    await sender.drain()
    assert fake_telegram.calls == []  # settled: the sender has nothing to send


async def test_a_failing_send_backs_off_by_the_policy_and_dies_after_the_max_tries(
    any_db: Database,
    sender: Sender,
    fake_telegram: FakeTelegram,
    registry: CollectorRegistry,
    clock: FakeClock,
) -> None:
    for _ in range(MAX_ATTEMPTS + 3):
        fake_telegram.fail("sendMessage", 500, "Internal Server Error")
    [delivery_id] = await _enqueue(any_db, clock, "не дойдёт")

    sender.pacing.retry_base = 0.4  # the first retry after 0.2–0.4 s (equal jitter)
    before = clock.now()
    await sender.drain()  # one try, then it waits for the policy's delay
    after = clock.now()
    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.attempts, stored.claim_token) == (Status.PENDING, 1, None)
    assert "Internal Server Error" in (stored.error or "")
    assert before + timedelta(seconds=0.2) <= stored.next_attempt_at
    assert stored.next_attempt_at <= after + timedelta(seconds=0.4)

    base = 0.001
    sender.pacing.retry_base = base  # from now on ~1 ms, then twice as long each time
    await sender.drain(include_waiting=True)  # waits out every backoff until it is dead
    tries = fake_telegram.called("sendMessage")
    assert len(tries) == MAX_ATTEMPTS
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
    assert gaps[0] >= 0.2 * 0.99
    for attempt, gap in enumerate(gaps[1:], start=2):
        # Equal jitter: at least half of base·2^(attempt-1) passes before the next try.
        assert gap >= base * 2 ** (attempt - 1) / 2 * 0.99, (attempt, gaps)
    assert gaps[-1] >= 0.5  # the 11th wait: grown from 1 ms to half a second at least

    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.attempts, stored.claim_token) == (
        Status.FAILED,
        MAX_ATTEMPTS,
        None,
    )
    assert (_outcome(registry, "dead"), _outcome(registry, "failed")) == (1.0, 0.0)
    assert _outcome(registry, "sent") == 0.0


async def test_a_429_is_waited_out_and_not_counted_as_a_try(
    any_db: Database,
    sender: Sender,
    fake_telegram: FakeTelegram,
    registry: CollectorRegistry,
    clock: FakeClock,
) -> None:
    # More 429s than the tries a delivery has: waits are not tries, so it is never dead.
    for _ in range(MAX_ATTEMPTS + 2):
        fake_telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    [delivery_id] = await _enqueue(any_db, clock, "дождётся")

    await sender.drain()
    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.attempts, stored.claim_token) == (Status.PENDING, 0, None)
    assert "retry after" in (stored.error or "")

    await sender.drain(include_waiting=True)
    assert len(fake_telegram.called("sendMessage")) == MAX_ATTEMPTS + 3
    assert fake_telegram.texts_in(CHAT, None) == ["дождётся"]
    stored = await _stored(any_db, delivery_id)
    assert (stored.status, stored.attempts, stored.error) == (Status.SENT, 1, None)
    assert (_outcome(registry, "sent"), _outcome(registry, "dead")) == (1.0, 0.0)


async def test_wakes_over_a_waiting_backlog_are_coalesced_but_a_short_queue_is_looked_at(
    any_db: Database, sender: Sender, fake_telegram: FakeTelegram
) -> None:
    """Every applied slice wakes the sender; while a backlog waits for its chat's budget, a pass
    per wake would read hundreds of rows again and again for nothing."""
    counted = _count_passes(sender)
    sender.budgets.cool_off(CHAT, 60)  # the chat waits a minute (as after a 429)

    await _enqueue(any_db, sender.clock, "short", "queue")
    for _ in range(3):
        await sender._step()
    assert counted.passes == 3  # a short queue: every wake looks at it

    await _enqueue(any_db, sender.clock, *(f"note {n}" for n in range(120)))
    counted.passes = 0
    waits = [await sender._step() for _ in range(5)]
    assert counted.passes == 1  # one look, then the wakes wait
    assert all(wait is not None and 0 < wait <= 1.0 for wait in waits)
    assert not fake_telegram.called("sendMessage")


async def test_an_alert_behind_a_long_backlog_is_read_with_its_chat_s_earlier_rows(
    any_db: Database, clock: FakeClock
) -> None:
    """A ringing call queued behind more notes than a pass reads is still among the candidates
    (the scheduler sends the most urgent lane first), and so are the earlier rows of its own
    topic (its chat's order is kept); other chats' later rows are not."""
    async with any_db.session() as session:
        for client_id in (7, *range(100, 110), 200, 201):
            session.add(Client(id=client_id, phone=f"7900{client_id:07d}"))
        await session.flush()

        def note(client_id: int, lane: int = telegram_queue.MESSAGE, text: str = "…") -> None:
            telegram_queue.enqueue(
                session,
                Outgoing(
                    target="topic", chat_id=GROUP, client_id=client_id, lane=lane, text=text
                ),
            )

        for n in range(10):
            note(100 + n)  # the backlog: ten clients' notes
        note(7, text="earlier note of client 7")
        note(200)
        note(7, telegram_queue.ALERT, text="📞 client 7 rings")
        note(201)
        await session.flush()

    rows = await telegram_queue.candidates(any_db, 5)
    texts = [row.text for row in rows]
    assert len(rows) == 7  # the five oldest, then client 7's line up to its alert
    assert texts[-2:] == ["earlier note of client 7", "📞 client 7 rings"]
    assert [row.id for row in rows] == sorted(row.id for row in rows)
    assert {row.client_id for row in rows[5:]} == {7}
    assert len(await telegram_queue.candidates(any_db, 20)) == 14  # a short queue: all of it


async def test_an_urgent_wake_ends_the_coalescing_of_a_backlog_s_wakes(
    any_db: Database, sender: Sender
) -> None:
    """While a backlog waits for its budget, wakes are coalesced — but not the wake of a
    ringing or missed call: its pass happens at once."""
    counted = _count_passes(sender)
    sender.budgets.cool_off(CHAT, 60)
    await _enqueue(any_db, sender.clock, *(f"note {n}" for n in range(120)))
    await sender._step()
    await sender._step()
    assert counted.passes == 1  # coalesced
    sender.wake(urgent=True)
    await sender._step()
    assert counted.passes == 2


async def test_an_alert_for_a_chat_whose_budget_is_spent_waits_for_the_budget_not_a_pass(
    any_db: Database, sender: Sender, fake_telegram: FakeTelegram
) -> None:
    """Under a call backlog behind the group's budget nearly every applied slice queues an
    alert for that group. A pass for each would read the backlog again and send nothing: the
    alert's wake ends the coalescing only if one of its chats may send it now (a new client's
    topic takes three sends), else it moves the next pass to when the first of them may."""
    counted = _count_passes(sender)
    sender.budgets.cool_off(CHAT, 60)
    await _enqueue(any_db, sender.clock, *(f"note {n}" for n in range(120)))
    await sender._step()
    assert counted.passes == 1

    sender.wake(urgent=True, alerts={CHAT: 1})  # its only chat waits a minute: no pass
    quiet = await sender._step()
    assert counted.passes == 1
    assert quiet is not None and 0 < quiet <= 1.0

    sender.budgets.cool_off(GROUP, 1)  # another chat may send sooner: the pass comes then
    group_waits = sender.budgets.wait_for(GROUP)
    assert 0 < group_waits < quiet
    sender.wake(urgent=True, alerts={CHAT: 1, GROUP: 1})
    wait = await sender._step()
    assert counted.passes == 1
    assert wait is not None and 0 < wait <= group_waits

    other_group = GROUP - 1
    for _ in range(4):  # a group's bucket holds five sends: one is left
        assert sender.budgets.take(other_group)
    sender.wake(urgent=True, alerts={CHAT: 1, other_group: 3})  # a new client's topic: 3 sends
    await sender._step()
    assert counted.passes == 1
    sender.wake(urgent=True, alerts={CHAT: 1, other_group: 1})  # a standing topic: one send
    await sender._step()
    assert counted.passes == 2
    assert not fake_telegram.called("sendMessage")  # the backlog's chat still waits


async def test_the_sender_s_read_walks_only_the_unsettled_rows_in_id_order(
    any_db: Database,
) -> None:
    """A pass reads the oldest unsettled rows: the partial index gives them in id order, past
    the sent ones and without sorting every unsettled row first (7 ms a pass behind 14,000
    notes on PostgreSQL, before). Checked in each database's own plan of the sender's query."""
    async with any_db.session() as session:
        await telegram_queue.enqueue_many(
            session, [Outgoing("chat", CHAT, text=f"note {n}") for n in range(3000)]
        )
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE telegram_deliveries SET status = 'sent' WHERE id <= 2000")
        )
    query = telegram_queue._unsettled().limit(150)
    async with any_db.session() as session:
        await session.exec(text("ANALYZE"))  # type: ignore[call-overload]
        literal = {"literal_binds": True}
        sql = str(query.compile(dialect=session.bind.dialect, compile_kwargs=literal))
        explain = "EXPLAIN QUERY PLAN " if any_db.dialect == "sqlite" else "EXPLAIN "
        plan = " ".join(
            str(row[-1]) for row in (await session.exec(text(explain + sql))).all()  # type: ignore[call-overload]
        )
    assert "ix_telegram_deliveries_unsettled" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
    rows = await telegram_queue.candidates(any_db, 150)
    assert [row.text for row in rows[:2]] == ["note 2000", "note 2001"]
