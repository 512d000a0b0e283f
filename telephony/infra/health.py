"""What `/healthz` asks: each part of the service (the inbox, a queue, a worker loop, Telegram)
registers a check that names its problem, or says nothing when it is fine.

A check is cheap (an in-memory figure or one indexed query) because load balancers call
`/healthz` every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Returns None when healthy, otherwise a short reason ("oldest push waits 93 s").
HealthCheck = Callable[[], Awaitable[str | None]]


class HealthChecks:
    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}

    def add(self, name: str, check: HealthCheck) -> None:
        self._checks[name] = check

    async def problems(self) -> dict[str, str]:
        """Every failing check by name; a check that raises is a problem too."""
        found: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                problem = await check()
            except Exception as exc:  # a broken check must not hide the others
                problem = f"check failed: {exc.__class__.__name__}"
            if problem is not None:
                found[name] = problem
        return found
