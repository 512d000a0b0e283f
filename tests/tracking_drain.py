"""A pool-drain attack over HTTP, shared by the suite (tests/test_tracking_drain.py) and the bench
(bench/pool_drain.py): a script sends `rate` visits a second with a browser's user agent from
ten public addresses (each in its own /24, the harder case) while real visitors browse.

Timeline (seconds from the attack's start):
- before 0: the visitors already on the site take their numbers;
- 0 … `seconds`: the attack, open loop (each request leaves on time, answered or not);
- at `during_at`: visitors arriving while the script still has budget (before it is refused);
- at `after_at`: visitors arriving once the script was refused; the early visitors open another
  page and ping (their numbers must still be theirs).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SITE = "https://shop.example"
DEFAULT = "74951234567"
STATIC = "74950000099"
POOL = [f"749500001{n:02d}" for n in range(12)]  # visits/100 + 1 for 1,100 visits a day
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
ATTACKERS = [f"5.188.{10 + n}.7" for n in range(10)]  # ten addresses in ten networks
BEFORE = [f"178.176.{n}.2" for n in range(4)]
DURING = [f"95.31.{n}.9" for n in range(2)]
AFTER = [f"188.162.{n}.4" for n in range(4)] + ["2a02:6b8:b010:1::5", "2a00:1fa0:4:2::9"]

LIMITS_OFF = """
[tracking.limits]
requests_per_minute = 0
network_requests_per_minute = 0
leases_per_address = 0
leases_per_network = 0
penalty_minutes = 0
"""


def config(limits: str = "") -> str:
    """The drain's `[tracking]`: one pool of 12 numbers and a static number; default limits
    unless `limits` (a `[tracking.limits]` table) says otherwise."""
    numbers = ", ".join(f'"{number}"' for number in POOL)
    return f"""
[tracking]
sites = ["{SITE}"]
default_number = "{DEFAULT}"

[tracking.lease]
ping_interval = 30
idle_timeout = 90
{limits}
[[tracking.pools]]
name = "site"
source = "Сайт"
default = true
numbers = [{numbers}]
static_number = "{STATIC}"
"""


# (path, JSON body, client address) → (status, JSON answer)
Post = Callable[[str, dict[str, Any], str], Awaitable[tuple[int, Any]]]


@dataclass
class Drain:
    attack_sent: int = 0
    attack_admitted: int = 0
    attack_refused: int = 0
    attack_numbers: set[str] = field(default_factory=set)  # pool numbers the script was shown
    before: list[str] = field(default_factory=list)  # first numbers of the early visitors
    kept: list[str] = field(default_factory=list)  # their numbers on a later page and ping
    during: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def pool_share(self, numbers: list[str]) -> float:
        return sum(number in POOL for number in numbers) / len(numbers) if numbers else 0.0


async def run(
    post: Post,
    *,
    rate: float = 100.0,
    seconds: float = 4.0,
    during_at: float = 0.5,
    after_at: float = 3.0,
) -> Drain:
    drain = Drain()
    visit_ids: dict[str, str] = {}

    async def arrive(address: str, into: list[str]) -> None:
        status, answer = await post("/ct/v1/visit", {"url": f"{SITE}/"}, address)
        assert status == 200, (address, status, answer)
        visit_ids[address] = answer["visit_id"]
        into.append(answer["number"])

    async def browse_on(address: str) -> None:
        body = {"url": f"{SITE}/prices", "visit_id": visit_ids[address]}
        status, page = await post("/ct/v1/visit", body, address)
        assert status == 200, (address, status, page)
        status, pinged = await post("/ct/v1/ping", {"visit_id": visit_ids[address]}, address)
        assert status == 200, (address, status, pinged)
        drain.kept += [page["number"], pinged["number"]]

    async def attack(index: int) -> None:
        address = ATTACKERS[index % len(ATTACKERS)]
        status, answer = await post("/ct/v1/visit", {"url": f"{SITE}/?p={index}"}, address)
        if status == 200:
            drain.attack_admitted += 1
            if answer["number"] in POOL:
                drain.attack_numbers.add(answer["number"])
        elif status == 429:
            drain.attack_refused += 1

    async def at(moment: float, started: float, work: Awaitable[None]) -> None:
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
        await work

    for address in BEFORE:
        await arrive(address, drain.before)
    started = time.monotonic()
    total = int(rate * seconds)
    drain.attack_sent = total
    tasks = [at(i / rate, started, attack(i)) for i in range(total)]
    tasks += [at(during_at, started, arrive(address, drain.during)) for address in DURING]
    tasks += [at(after_at, started, arrive(address, drain.after)) for address in AFTER]
    tasks += [at(after_at, started, browse_on(address)) for address in BEFORE]
    await asyncio.gather(*tasks)
    drain.seconds = time.monotonic() - started
    return drain


def headers(address: str) -> dict[str, str]:
    """As the local reverse proxy forwards a browser's request (127.0.0.1 is a trusted proxy)."""
    return {
        "Content-Type": "text/plain",
        "Origin": SITE,
        "User-Agent": CHROME,
        "X-Forwarded-For": address,
    }


def body(value: dict[str, Any]) -> str:
    return json.dumps(value)
