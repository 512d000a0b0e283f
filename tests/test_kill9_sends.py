"""kill -9 of the channel sender mid-send: every SMS ends sent or set aside with its reason, and
the fake SMS.ru never receives one twice (bench/kill9_sends.py, shortened)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

BENCH = Path(__file__).parents[1] / "bench" / "kill9_sends.py"


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH), "--messages", "60", "--kills", "3", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_killed_sender_loses_no_sms_and_sends_none_twice(
    backend: str, request: pytest.FixtureRequest
) -> None:
    args: list[str] = []
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        name = url.rpartition("/")[2] + "_kill9_sends"
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
    assert "lost: 0, duplicates: 0" in out
    kills = int(out.split("kills ")[1].split(",")[0])
    sent = int(out.split("sent ")[1].split(",")[0])
    assert kills >= 1 and sent >= 30, out  # the kills really landed while sends went on
