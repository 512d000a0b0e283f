"""kill -9 of `trubka serve` mid-load loses no acknowledged push (bench/kill9.py, shortened)."""

from __future__ import annotations

import pytest

from tests.bench_runner import run_bench


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_killed_server_loses_no_acknowledged_push(
    backend: str, request: pytest.FixtureRequest
) -> None:
    args = ["--seconds", "3", "--kills", "1", "--calls-in-flight", "8"]
    code, out = await run_bench("kill9.py", args, backend, request)
    assert code == 0, out
    assert "acknowledged but lost: 0, not applied: 0, set aside: 0" in out
    acknowledged = int(out.split("pushes acknowledged ")[1].split(",")[0])
    assert acknowledged > 20  # the load really ran across the kill
