"""Running a `bench/` script as a test does: a subprocess on SQLite, or on a PostgreSQL database
of its own made for the run and dropped after it (the kill -9 tests)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.postgres_admin import fresh_database

BENCH = Path(__file__).parents[1] / "bench"


async def run_bench(
    script: str, args: list[str], backend: str, request: pytest.FixtureRequest
) -> tuple[int, str]:
    """`python bench/SCRIPT ARGS…` (with `--database-url` on PostgreSQL); exit code and output."""
    if backend != "postgresql":
        return await _run(script, args)
    url: str = request.getfixturevalue("postgres_url")
    async with fresh_database(url, url.rpartition("/")[2] + "_" + Path(script).stem) as own:
        return await _run(script, [*args, "--database-url", own])


async def _run(script: str, args: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()
