"""Waiting after a refusal, in one place.

When a failed row is tried again is the queue engine's `RetryPolicy` (storage/queue.py:
exponential backoff with equal jitter); an upstream's own `Retry-After` can only lengthen that
wait. This module reads that header, for every upstream alike (Novofon, Roistat, Metrika).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from storage.queue import RetryPolicy

# A 429 that does not say how long to wait: upstreams count their quotas per minute.
RATE_LIMITED_PAUSE = 60.0

__all__ = ["RATE_LIMITED_PAUSE", "RetryPolicy", "pause_after_429", "retry_after"]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds an answer's `Retry-After` asks for (≥ 0), or None when it says nothing
    usable (missing, empty, not a number of seconds)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def pause_after_429(headers: Mapping[str, str]) -> float:
    """How long a 429 asks us to stay away: its `Retry-After`, else RATE_LIMITED_PAUSE."""
    stated = retry_after(headers)
    return RATE_LIMITED_PAUSE if stated is None else stated
