"""kill -9 of `trubka serve` mid-load loses no acknowledged push (bench/kill9.py, shortened)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

BENCH = Path(__file__).parents[1] / "bench" / "kill9.py"


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH), "--seconds", "3", "--kills", "1", "--calls-in-flight", "8",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_killed_server_loses_no_acknowledged_push(
    backend: str, request: pytest.FixtureRequest
) -> None:
    args: list[str] = []
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        name = url.rpartition("/")[2] + "_kill9"
        admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        args = ["--database-url", f"{url.rpartition('/')[0]}/{name}"]
    try:
        code, out = await _run(*args)
    finally:
        if backend == "postgresql":
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    assert code == 0, out
    assert "acknowledged but lost: 0, not applied: 0, set aside: 0" in out
    acknowledged = int(out.split("pushes acknowledged ")[1].split(",")[0])
    assert acknowledged > 20  # the load really ran across the kill
