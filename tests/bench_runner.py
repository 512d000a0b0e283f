"""Running a `bench/` script as a test does: a subprocess on SQLite, or on a PostgreSQL database
of its own made for the run and dropped after it (the kill -9 tests)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

BENCH = Path(__file__).parents[1] / "bench"


async def run_bench(
    script: str, args: list[str], backend: str, request: pytest.FixtureRequest
) -> tuple[int, str]:
    """`python bench/SCRIPT ARGS…` (with `--database-url` on PostgreSQL); exit code and output."""
    extra: list[str] = []
    admin = None
    name = ""
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        name = url.rpartition("/")[2] + "_" + Path(script).stem
        admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        extra = ["--database-url", f"{url.rpartition('/')[0]}/{name}"]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH / script), *args, *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()
    finally:
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
