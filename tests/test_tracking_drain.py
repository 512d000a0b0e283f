"""The drain test: a script at 100 visits/s from ten addresses against the app served over HTTP,
while real visitors browse. With the default limits real visitors keep and get pool numbers; with
the limits off the same script takes the whole pool (so the test can fail)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from storage.db import Database
from storage.tracking_queries import live_leases
from storage.types import utcnow
from tests import tracking_drain as drain
from tests.conftest import AppFactory
from tests.tracking_support import Client, write_config


def poster(client: Client) -> drain.Post:
    async def post(path: str, value: dict[str, Any], address: str) -> tuple[int, Any]:
        response = await client.post(path, data=drain.body(value), headers=drain.headers(address))
        return response.status, await response.json()

    return post


async def test_a_script_cannot_drain_the_pool(
    make_client: AppFactory, db: Database, tmp_path: Path
) -> None:
    client = await make_client(db, config=write_config(tmp_path, drain.config()))
    result = await drain.run(poster(client))
    # Visitors who were on the site keep their numbers through the attack.
    assert all(number in drain.POOL for number in result.before)
    assert sorted(result.kept) == sorted(result.before * 2)
    # Visitors arriving once the script was refused get pool numbers, every one of them.
    assert result.after and all(number in drain.POOL for number in result.after), result.after
    # The script spent its burst (20 a address, then 1/s) and was refused from then on; the
    # numbers it took went back at its first refusal, it holds none at the end.
    assert result.attack_admitted <= 10 * (20 + math.ceil(result.seconds) + 1)
    assert result.attack_refused == result.attack_sent - result.attack_admitted
    async with db.session() as session:
        for address in drain.ATTACKERS:
            assert await live_leases(session, now=utcnow(), address=address) == 0
    # Still penalized: refused, or (once a token refilled) answered with the static number.
    status, probe = await poster(client)(
        "/ct/v1/visit", {"url": f"{drain.SITE}/"}, drain.ATTACKERS[0]
    )
    assert (status, probe.get("error")) == (429, "Too many requests") or (
        status == 200 and probe["number"] == drain.STATIC
    ), probe


async def test_without_limits_the_same_script_takes_the_whole_pool(
    make_client: AppFactory, db: Database, tmp_path: Path
) -> None:
    client = await make_client(db, config=write_config(tmp_path, drain.config(drain.LIMITS_OFF)))
    result = await drain.run(poster(client), seconds=2.0, after_at=1.5)
    assert result.attack_refused == 0
    assert result.attack_numbers == set(drain.POOL) - set(result.before)
    assert result.after == [drain.STATIC] * len(drain.AFTER)
