"""Response time in working hours: the clock that answers thousands of questions per report
agrees with walking the calendar day by day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.reports.recovery import MAX_DAYS, WorkingClock, outcome
from telephony.scenarios.hours import WorkingHours, parse_spans

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")  # changes its clock twice a year
OFFICE = {day: parse_spans("09:00-18:00") for day in range(5)}
SHIFTS = {
    **{day: parse_spans(["08:00-12:30", "13:30-20:00"]) for day in range(6)},
    6: parse_spans("00:00-24:00"),
}
START = datetime(2026, 1, 1, tzinfo=UTC)


def walked(hours: WorkingHours, start: datetime, end: datetime) -> float:
    """The definition: the overlap of [start, end) with each day's open spans, day by day, in
    real seconds (the night the clock moves, a 00:00-24:00 day lasts 23 or 25 hours)."""
    total = 0.0
    local_start, local_end = start.astimezone(hours.zone), end.astimezone(hours.zone)
    day = local_start.date()
    while day <= local_end.date():
        for open_at, close_at in hours.spans(day):
            span_start = datetime.combine(day, open_at, tzinfo=hours.zone)
            span_end = datetime.combine(day, close_at, tzinfo=hours.zone)
            overlap = (min(span_end.timestamp(), end.timestamp())
                       - max(span_start.timestamp(), start.timestamp()))
            total += max(overlap, 0.0)
        day += timedelta(days=1)
    return total


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def test_a_call_at_night_called_back_at_nine_thirty_waited_thirty_minutes() -> None:
    hours = WorkingHours(MOSCOW, OFFICE)
    missed = datetime(2026, 11, 2, 20, 0, tzinfo=MOSCOW)  # Monday evening
    back = datetime(2026, 11, 3, 9, 30, tzinfo=MOSCOW)
    clock = WorkingClock(hours, seconds(missed), seconds(back))
    assert clock.between(seconds(missed), seconds(back)) == 30 * 60
    # Friday 17:50 → Monday 09:10: ten minutes on Friday, ten on Monday.
    friday, monday = (datetime(2026, 11, 6, 17, 50, tzinfo=MOSCOW),
                      datetime(2026, 11, 9, 9, 10, tzinfo=MOSCOW))
    clock = WorkingClock(hours, seconds(friday), seconds(monday))
    assert clock.between(seconds(friday), seconds(monday)) == 20 * 60


def test_holidays_count_nothing_and_a_call_back_months_later_counts_two_months() -> None:
    holiday = date(2026, 11, 4)
    hours = WorkingHours(MOSCOW, OFFICE, frozenset({holiday}))
    before = datetime(2026, 11, 3, 17, 0, tzinfo=MOSCOW)
    after = datetime(2026, 11, 5, 10, 0, tzinfo=MOSCOW)
    clock = WorkingClock(hours, seconds(before), seconds(after))
    assert clock.between(seconds(before), seconds(after)) == 2 * 3600  # 17–18 and 09–10
    late = before + timedelta(days=200)
    capped = before + timedelta(days=MAX_DAYS)
    clock = WorkingClock(hours, seconds(before), seconds(capped))
    assert clock.between(seconds(before), seconds(late)) == walked(hours, before, capped)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from([MOSCOW, BERLIN]),
    week=st.sampled_from([OFFICE, SHIFTS]),
    first=st.integers(min_value=0, max_value=365 * 86_400),
    waits=st.lists(st.integers(min_value=0, max_value=40 * 86_400), min_size=1, max_size=5),
    offsets=st.lists(st.integers(min_value=0, max_value=20 * 86_400), min_size=1, max_size=5),
)
def test_the_clock_agrees_with_walking_the_calendar(
    zone: ZoneInfo, week: dict[int, list[tuple[object, object]]], first: int,
    waits: list[int], offsets: list[int],
) -> None:
    hours = WorkingHours(zone, week)  # type: ignore[arg-type]
    base = seconds(START) + first
    pairs = [
        (base + offset, base + offset + wait)
        for offset, wait in zip(offsets, waits, strict=False)
    ]
    clock = WorkingClock(hours, base, max(end for _, end in pairs))
    for start, end in pairs:
        expected = walked(hours, datetime.fromtimestamp(start, UTC),
                          datetime.fromtimestamp(end, UTC))
        assert abs(clock.between(start, end) - expected) < 0.01


def test_outcomes_of_a_missed_call() -> None:
    rang = 1_000_000
    assert outcome(rang, rang + 15 * 60, "out") == "within_15m"
    assert outcome(rang, rang + 15 * 60 + 1, "out") == "within_24h"
    assert outcome(rang, rang + 86_401, "out") == "later"
    assert outcome(rang, rang + 300, "in") == "called_again"  # the client was first
    assert outcome(rang, None, None) == "never"
