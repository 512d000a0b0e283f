"""NovofonClient against the fake Novofon API over real HTTP: signed requests, the exact
parameters sent, the rate limits and 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from telephony.infra.clock import FakeClock
from telephony.infra.ratelimit import RateLimiter
from telephony.providers.novofon import NovofonClient, NovofonError
from tests.fakes.novofon import KEY, SECRET, FakeNovofon


@pytest.fixture
def fake_time() -> FakeClock:
    """A clock that moves only when someone sleeps: waits are recorded, never spent."""
    return FakeClock()


@pytest.fixture
async def novofon(fake_novofon: FakeNovofon, fake_time: FakeClock) -> AsyncIterator[NovofonClient]:
    client = NovofonClient(
        fake_novofon.url,
        KEY,
        SECRET,
        zone=ZoneInfo("Europe/Moscow"),
        timeout=2.0,
        limiter=RateLimiter(100, 60.0, clock=fake_time),
        statistics_limiter=RateLimiter(3, 60.0, clock=fake_time),
        clock=fake_time,
    )
    yield client
    await client.close()


async def test_callback_sends_the_signed_documented_request(
    novofon: NovofonClient, fake_novofon: FakeNovofon
) -> None:
    answer = await novofon.callback("100", "79261234567")
    assert answer["status"] == "success"
    (request,) = fake_novofon.requests
    assert request.path == "/v1/request/callback/"
    assert request.query == "format=json&from=100&to=79261234567"
    assert request.signed_ok
    assert request.authorization.startswith(f"{KEY}:")


async def test_special_characters_are_sent_exactly_as_signed(
    novofon: NovofonClient, fake_novofon: FakeNovofon
) -> None:
    await novofon.callback("100", "79261234567", sip="a~b c")
    (request,) = fake_novofon.requests
    assert request.query == "format=json&from=100&sip=a%7Eb+c&to=79261234567"
    assert request.signed_ok


async def test_a_wrong_secret_is_refused_with_novofons_message(fake_novofon: FakeNovofon) -> None:
    client = NovofonClient(fake_novofon.url, KEY, "wrong-secret")
    try:
        with pytest.raises(NovofonError) as error:
            await client.callback("100", "79261234567")
    finally:
        await client.close()
    assert (error.value.status, error.value.message) == (401, "Not authorized")


async def test_an_error_answer_is_a_novofon_error(
    novofon: NovofonClient, fake_novofon: FakeNovofon
) -> None:
    fake_novofon.fail(200, {"status": "error", "message": "Wrong parameter 'to'"})
    with pytest.raises(NovofonError, match="Wrong parameter 'to'"):
        await novofon.callback("100", "1")
    fake_novofon.fail(500, {"status": "error", "message": "Internal error"})
    with pytest.raises(NovofonError) as error:
        await novofon.callback("100", "79261234567")
    assert error.value.status == 500


async def test_a_short_429_is_waited_out_and_retried_once(
    novofon: NovofonClient, fake_novofon: FakeNovofon, fake_time: FakeClock
) -> None:
    fake_novofon.rate_limit(retry_after=2)
    answer = await novofon.callback("100", "79261234567")
    assert answer["status"] == "success"
    assert len(fake_novofon.requests) == 2
    assert 2.0 in fake_time.sleeps


async def test_a_long_429_fails_at_once_with_status_429(
    novofon: NovofonClient, fake_novofon: FakeNovofon, fake_time: FakeClock
) -> None:
    fake_novofon.rate_limit(retry_after=40)
    with pytest.raises(NovofonError) as error:
        await novofon.callback("100", "79261234567")
    assert error.value.status == 429
    assert "40 s" in error.value.message
    assert len(fake_novofon.requests) == 1
    assert fake_time.sleeps == []  # a manager's button is not held for 40 s
    # …and the next request waits out Novofon's pause instead of being refused again.
    await novofon.callback("100", "79261234567")
    assert sum(fake_time.sleeps) == pytest.approx(40.0)


async def test_at_most_100_requests_per_minute(
    novofon: NovofonClient, fake_novofon: FakeNovofon, fake_time: FakeClock
) -> None:
    for _ in range(101):
        await novofon.callback("100", "79261234567")
    assert len(fake_novofon.requests) == 101
    assert fake_time.sleeps == [pytest.approx(60.0)]  # only the 101st waited, a full window


async def test_statistics_are_asked_in_the_account_zone_and_read_back_in_utc(
    novofon: NovofonClient, fake_novofon: FakeNovofon, fake_time: FakeClock
) -> None:
    fake_novofon.stats = [
        {
            "call_id": "1710500710.4873",
            "sip": "100",
            "callstart": "2024-03-15 14:05:10",
            "clid": "79161234567",
            "destination": "74951234567",
            "disposition": "answered",
            "seconds": 95,
            "is_recorded": "true",
            "pbx_call_id": "in_5f8d2c1a9e",
        }
    ]
    rows = await novofon.pbx_statistics(
        datetime(2024, 3, 15, 0, 0, tzinfo=UTC),
        datetime(2024, 3, 16, 0, 0, tzinfo=UTC),
        call_type="in",
    )
    (request,) = fake_novofon.requests
    assert request.path == "/v1/statistics/pbx/"
    assert request.params == {
        "call_type": "in",
        "end": "2024-03-16 03:00:00",
        "format": "json",
        "limit": "1000",
        "start": "2024-03-15 03:00:00",
        "version": "2",
    }
    assert request.signed_ok
    (row,) = rows
    assert (row.pbx_call_id, row.status, row.seconds, row.is_recorded) == (
        "in_5f8d2c1a9e",
        "Success",
        95,
        True,
    )
    assert row.start == datetime(2024, 3, 15, 11, 5, 10, tzinfo=UTC)
    # Statistics have their own 3/min limit on top of the 100/min one.
    for _ in range(3):
        await novofon.pbx_statistics(datetime.now(UTC), datetime.now(UTC))
    assert fake_time.sleeps == [pytest.approx(60.0)]


async def test_recording_link(novofon: NovofonClient, fake_novofon: FakeNovofon) -> None:
    link = await novofon.record_link("in_5f8d2c1a9e")
    assert link == "https://api.novofon.com/v1/pbx/record/download/in_5f8d2c1a9e.mp3"
    (request,) = fake_novofon.requests
    assert request.query == "format=json&pbx_call_id=in_5f8d2c1a9e"


async def test_an_unreachable_novofon_is_a_clear_error() -> None:
    client = NovofonClient("http://127.0.0.1:9", KEY, SECRET, timeout=1.0)
    try:
        with pytest.raises(NovofonError, match="Novofon is unreachable"):
            await client.callback("100", "79261234567")
    finally:
        await client.close()


async def test_rate_limiter_counts_a_sliding_window(fake_time: FakeClock) -> None:
    limiter = RateLimiter(2, 10.0, clock=fake_time)
    assert await limiter.acquire() == 0
    fake_time.advance(4)
    assert await limiter.acquire() == 0
    assert await limiter.acquire() == pytest.approx(6.0)  # until the first one is 10 s old
    assert await limiter.acquire() == pytest.approx(4.0)
