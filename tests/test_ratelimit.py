"""The shared token buckets: budgets per key, bursts, cool-offs after a 429."""

from __future__ import annotations

import pytest

from telephony.infra.clock import FakeClock
from telephony.infra.ratelimit import TokenBuckets


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=20 / 60, burst=3, clock=clock)
    assert [buckets.take("group") for _ in range(4)] == [True, True, True, False]
    assert buckets.wait_for("group") == 3.0  # one token every 3 s
    clock.advance(3.0)
    assert buckets.take("group") is True
    assert buckets.take("group") is False


def test_keys_have_their_own_budget() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    assert buckets.take("a") is True
    assert buckets.take("a") is False
    assert buckets.take("b") is True


def test_a_cool_off_blocks_the_key_then_refills_slowly() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1, burst=5, clock=clock)
    buckets.cool_off("chat", 10)
    assert buckets.take("chat") is False
    assert buckets.wait_for("chat") == 11.0  # the cool-off, then one token
    clock.advance(10.5)
    assert buckets.take("chat") is False  # half a token after the cool-off
    clock.advance(0.5)
    assert buckets.take("chat") is True


def test_idle_keys_are_forgotten() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    for address in range(5000):
        buckets.take(address)
    clock.advance(2)
    buckets.take("one more")
    assert len(buckets._tokens) < 4100


def test_a_hold_counts_the_refill_from_when_a_request_landed() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    assert buckets.take("chat") is True
    clock.advance(0.3)  # the request's flight
    buckets.hold("chat", 0.3)
    assert buckets.wait_for("chat") == pytest.approx(1.0)  # a full second after it landed
    buckets.hold("unknown", 5)  # a key never taken has nothing to hold
    assert buckets.take("unknown") is True
