"""`Retry-After` is read one way for every upstream: seconds, or the one default for a 429."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from telephony.infra.backoff import RATE_LIMITED_PAUSE, pause_after_429, retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 40 ", 40.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_retry_after_reads_seconds_only(header: str, seconds: float | None) -> None:
    headers = CIMultiDict({"retry-after": header})  # header names are case-insensitive
    assert retry_after(headers) == seconds
    assert pause_after_429(headers) == (RATE_LIMITED_PAUSE if seconds is None else seconds)


def test_a_429_without_the_header_waits_a_minute() -> None:
    assert retry_after(CIMultiDict()) is None
    assert pause_after_429(CIMultiDict()) == RATE_LIMITED_PAUSE == 60.0
