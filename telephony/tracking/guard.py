"""Pool protection: per-address and per-network request budgets, penalties and live-lease caps.

One limiter for the house (`telephony.infra.ratelimit.TokenBuckets`); this module only decides
the keys: the client address, and its /24 (IPv4) or /48 (IPv6) network, since one rented
server range has many addresses. Addresses that are not public (loopback, private,
documentation ranges) are not limited: a reverse proxy missing from `trusted_proxies` shows
up as one, and limiting it would limit every visitor at once.

A key refused is penalized until `penalty_minutes` after its last refused request: it takes no
numbers (its live leases end at once). People stay far below the budgets; a script draining the
pool spends its burst within seconds and holds nothing from then on.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.ratelimit import TokenBuckets
from telephony.tracking.config import Limits

IPV4_NETWORK = 24
IPV6_NETWORK = 48
# Penalties are forgotten once over; past this many keys the expired ones are swept.
_SWEEP_AT = 4096


@dataclass(frozen=True)
class Holder:
    """Who asks for a number: the address and its network, both as text (stored on the lease)."""

    address: str
    network: str


@dataclass(frozen=True)
class Admission:
    retry_after: int = 0  # > 0: refused, answer 429 with this Retry-After
    penalized: bool = False  # the address or its network may take no number now
    newly_penalized: bool = False  # refused just now for the first time: end its leases
    network_refused: bool = False  # the network's budget refused (end the network's leases)


def holder_of(ip: str | None) -> Holder | None:
    """The limited identity of a public address; None for no, a bad or a non-public address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    prefix = IPV4_NETWORK if address.version == 4 else IPV6_NETWORK
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return Holder(str(address), str(network))


class RequestBudget:
    """Token buckets per address and per network for `/ct/v1/visit` and `/ct/v1/ping`."""

    def __init__(self, limits: Limits, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._address = _buckets(limits.requests_per_minute, limits.burst, clock)
        self._network = _buckets(limits.network_requests_per_minute, limits.network_burst, clock)
        self._penalty = 60.0 * limits.penalty_minutes
        self._penalized: dict[str, float] = {}  # address or network → penalized until

    def admit(self, holder: Holder | None) -> Admission:
        """Spend one request of `holder` when both budgets allow it, else refuse (and penalize
        the refusing key)."""
        if holder is None:
            return Admission()
        checks = [
            (buckets, key)
            for buckets, key in ((self._address, holder.address), (self._network, holder.network))
            if buckets is not None
        ]
        waits = [(buckets.wait_for(key), key) for buckets, key in checks]
        refused = [key for wait, key in waits if wait > 0]
        if refused:
            wait = max(wait for wait, _ in waits)
            newly = not self.penalized(holder)
            for key in refused:
                self._penalize(key)
            penalized = self.penalized(holder)
            return Admission(
                max(1, math.ceil(wait)),
                penalized,
                newly and penalized,
                network_refused=holder.network in refused,
            )
        for buckets, key in checks:
            buckets.take(key)
        return Admission(0, self.penalized(holder))

    def penalized(self, holder: Holder) -> bool:
        now = self._clock.monotonic()
        return any(self._penalized.get(key, 0.0) > now for key in (holder.address, holder.network))

    def _penalize(self, key: str) -> None:
        if not self._penalty:
            return
        now = self._clock.monotonic()
        if len(self._penalized) >= _SWEEP_AT:
            self._penalized = {k: until for k, until in self._penalized.items() if until > now}
        # Counted from the last refused request: a script that keeps hammering stays penalized.
        self._penalized[key] = now + self._penalty


def _buckets(per_minute: int, burst: int, clock: Clock) -> TokenBuckets | None:
    return TokenBuckets(per_minute / 60.0, burst, clock=clock) if per_minute else None
