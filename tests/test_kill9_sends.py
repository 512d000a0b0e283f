"""kill -9 of the channel sender mid-send: every SMS ends sent or set aside with its reason, and
the fake SMS.ru never receives one twice (bench/kill9_sends.py, shortened)."""

from __future__ import annotations

import pytest

from tests.bench_runner import run_bench


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_killed_sender_loses_no_sms_and_sends_none_twice(
    backend: str, request: pytest.FixtureRequest
) -> None:
    code, out = await run_bench(
        "kill9_sends.py", ["--messages", "60", "--kills", "3"], backend, request
    )
    assert code == 0, out
    assert "lost: 0, duplicates: 0" in out
    kills = int(out.split("kills ")[1].split(",")[0])
    sent = int(out.split("sent ")[1].split(",")[0])
    assert kills >= 1 and sent >= 30, out  # the kills really landed while sends went on
