"""The send scheduler's policy, pure (bot/telegram/policy.py): which chat goes next and what goes
with it, decided over deliveries and budgets on a fake clock — no database, no Bot API."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bot.telegram.budgets import BudgetRates, Budgets
from bot.telegram.policy import Fifo, cost, fifo_key, live_text, merged, most_urgent, together
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import ALERT, CARD, LIVE, MESSAGE
from telephony.infra.clock import FakeClock

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GROUP, MANAGER = -100, 501
_ids = itertools.count(1)


def row(chat_id: int, lane: int = MESSAGE, **values: object) -> TelegramDelivery:
    values.setdefault("target", "topic" if chat_id < 0 else "chat")
    values.setdefault("method", "send")
    values.setdefault("text", "…")
    values.setdefault("next_attempt_at", NOW)
    return TelegramDelivery(id=next(_ids), chat_id=chat_id, lane=lane, **values)


def lines(*rows: TelegramDelivery) -> dict[Fifo, list[TelegramDelivery]]:
    fifos: dict[Fifo, list[TelegramDelivery]] = {}
    for each in rows:
        fifos.setdefault(fifo_key(each), []).append(each)
    return fifos


def choose(
    fifos: dict[Fifo, list[TelegramDelivery]], budgets: Budgets, clock: FakeClock
) -> tuple[tuple[Fifo, list[TelegramDelivery]] | None, list[float]]:
    next_due: list[float] = []
    chosen = most_urgent(
        fifos,
        budgets=budgets,
        now=clock.now(),
        mono=clock.monotonic(),
        ready={1, 2},
        alerted={},
        next_due=next_due,
    )
    return chosen, next_due


def test_the_most_urgent_lane_goes_first_then_the_oldest() -> None:
    clock = FakeClock(NOW)
    card = row(GROUP, CARD, client_id=1, method="card")
    note = row(GROUP, MESSAGE, client_id=2)
    alert = row(MANAGER, ALERT)
    chosen, _ = choose(lines(card, note, alert), Budgets(clock=clock), clock)
    assert chosen == (("chat", MANAGER), [alert])


def test_a_line_in_backoff_waits_without_holding_its_chat() -> None:
    clock = FakeClock(NOW)
    later = row(GROUP, ALERT, client_id=1, next_attempt_at=NOW + timedelta(seconds=30))
    now = row(GROUP, CARD, client_id=2, method="card")
    chosen, next_due = choose(lines(later, now), Budgets(clock=clock), clock)
    assert chosen == (("topic", 2), [now])
    assert next_due == [clock.monotonic() + 30]


def test_an_empty_budget_saves_the_chat_for_its_most_urgent_line() -> None:
    clock = FakeClock(NOW)
    budgets = Budgets(BudgetRates(group_per_minute=20, group_burst=1), clock=clock)
    assert budgets.take(GROUP)  # the group's one token is spent
    urgent = row(GROUP, ALERT, client_id=1)
    card = row(GROUP, CARD, client_id=2, method="card")
    private = row(MANAGER, MESSAGE)
    chosen, next_due = choose(lines(urgent, card, private), budgets, clock)
    assert chosen == (("chat", MANAGER), [private])  # another chat's budget is free
    assert next_due == [pytest.approx(clock.monotonic() + 60 / 19)]  # 19 a minute refill
    clock.advance(60 / 19 + 0.001)
    chosen, _ = choose(lines(urgent, card), budgets, clock)
    assert chosen == (("topic", 1), [urgent])  # not the card, which came later in a lower lane


def test_live_lines_of_one_call_collapse_and_alerts_to_one_chat_merge() -> None:
    first = row(GROUP, LIVE, client_id=1, method="live", call_id=7)
    second = row(GROUP, LIVE, client_id=1, method="live", call_id=7)
    other_call = row(GROUP, LIVE, client_id=1, method="live", call_id=8)
    assert together([first, second, other_call]) == [first, second]
    alerts = [row(MANAGER, ALERT, text=f"alert {n}") for n in range(25)]
    assert len(together(alerts)) == 20  # at most MAX_MERGED in one message
    text, markup = merged(alerts[:2])
    assert text == "alert 0\n\nalert 1" and markup is None


def test_a_topic_not_known_to_stand_costs_its_creation_and_card() -> None:
    assert cost(row(MANAGER), ready=set()) == 1
    assert cost(row(GROUP, client_id=1), ready={1}) == 1
    assert cost(row(GROUP, client_id=1), ready=set()) == 3
    assert cost(row(GROUP, CARD, client_id=1, method="card"), ready={1}) == 2


def test_a_long_live_message_keeps_its_opening_and_latest_lines() -> None:
    opening = row(GROUP, LIVE, text="📞 opening")
    rest = [row(GROUP, LIVE, text=f"line {n:04} " + "x" * 90) for n in range(100)]
    text = live_text([opening, *rest])
    assert len(text) <= 4096
    assert text.startswith("📞 opening\n…\n") and text.endswith(rest[-1].text)


def test_other_lanes_leave_a_group_token_for_a_ringing_call() -> None:
    """A backlog of notes spends the group's budget down to its reserve, not to zero: a call
    that starts ringing then goes at once instead of a whole refill (4 s) later."""
    clock = FakeClock(NOW)
    budgets = Budgets(BudgetRates(group_per_minute=20, group_burst=5), clock=clock)
    backlog = [row(GROUP, MESSAGE, client_id=2) for _ in range(10)]  # a standing topic
    sent = 0
    while True:
        chosen, _ = choose(lines(*backlog[sent:]), budgets, clock)
        if chosen is None:
            break
        assert budgets.take(GROUP)
        sent += 1
    assert sent == 4  # burst 5, one kept
    ringing = row(GROUP, ALERT, client_id=1)
    chosen, _ = choose(lines(*backlog[sent:], ringing), budgets, clock)
    assert chosen == (("topic", 1), [ringing])
