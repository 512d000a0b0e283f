"""Pool protection: per-address and per-network request budgets and live-lease caps.

One limiter for the house (`telephony.ratelimit.TokenBuckets`); this module only decides the keys:
the client address, and its /24 (IPv4) or /48 (IPv6) network, since one rented server range has
many addresses. Addresses that are not public (loopback, private, documentation ranges) are not
limited: a reverse proxy missing from `trusted_proxies` shows up as one, and limiting it would
limit every visitor at once.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from telephony.ratelimit import Clock, TokenBuckets
from telephony.tracking.config import Limits

IPV4_NETWORK = 24
IPV6_NETWORK = 48


@dataclass(frozen=True)
class Holder:
    """Who asks for a number: the address and its network, both as text (stored on the lease)."""

    address: str
    network: str


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

    def __init__(self, limits: Limits, *, clock: Clock = time.monotonic) -> None:
        self._address = _buckets(limits.requests_per_minute, limits.burst, clock)
        self._network = _buckets(limits.network_requests_per_minute, limits.network_burst, clock)

    def retry_after(self, holder: Holder | None) -> int:
        """0 and one request spent when `holder` may go now; else whole seconds to wait."""
        if holder is None:
            return 0
        checks = [
            (buckets, key)
            for buckets, key in ((self._address, holder.address), (self._network, holder.network))
            if buckets is not None
        ]
        wait = max((buckets.wait_for(key) for buckets, key in checks), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for buckets, key in checks:
            buckets.take(key)
        return 0


def _buckets(per_minute: int, burst: int, clock: Clock) -> TokenBuckets | None:
    return TokenBuckets(per_minute / 60.0, burst, clock=clock) if per_minute else None
