"""The API description tells the truth: Schemathesis, with all its checks, against the app served
over real HTTP (tests/schemathesis_app.py), every operation called with a token of its scope.

Any failure fails this test with Schemathesis's own report (each with its curl to reproduce).
The accepted ones are in tests/schemathesis-baseline.json, each with its reason; the rules JSON
Schema cannot say are in tests/schemathesis.toml beside the operations that document them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from tests.schemathesis_app import BASELINE, SPEC, served

ST = Path(sys.executable).with_name("st")
TIMEOUT = 300  # far above the ~30 s it takes; only a hung run hits it


def _problems(spec: Any) -> list[str]:
    """Pydantic's own constraint names (`ge`, `le`, …) where JSON Schema's belong: a bound
    that reached the description under a name no validator knows (what hid `minimum: 1`)."""
    found = []
    stack: list[tuple[str, Any]] = [("", spec)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            if "type" in node and {"ge", "le", "gt", "lt"} & set(node):
                found.append(where)
            stack.extend((f"{where}/{key}", value) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}/{index}", value) for index, value in enumerate(node))
    return found


async def test_schemathesis_finds_nothing_against_the_served_app(tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    async with served() as app:
        async with ClientSession() as http, http.get(app.url + SPEC) as response:
            spec = await response.json()
        assert _problems(spec) == []
        process = await asyncio.create_subprocess_exec(
            *app.command(str(ST)),
            "--report", "json", "--report-json-path", str(report),
            env={**os.environ, **app.environment()},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    run = json.loads(report.read_text())
    print(text[-1500:])  # the summary, in the log of a passing run too
    assert run["complete"] and run["test_cases"]["unique_failures"] == 0, text
    assert run["errors"] == [] and run["baseline"]["new"] == 0, text
    # Every operation of the description was tested (Schemathesis leaves out the one that
    # serves the description it reads), and all four phases ran.
    operations = run["operations"]
    assert operations["tested"] == operations["total"], operations
    assert {phase["status"] for phase in run["phases"].values()} == {"success"}, run["phases"]
    assert run["test_cases"]["generated"] >= 1000, run["test_cases"]
    # Each operation got requests through (its token was good for it): a wrong or missing
    # token would be a 401 on every call, which the checks alone would let pass.
    through = {
        operation: sum(phase["accepted"] for phase in phases.values())
        for operation, phases in run["valid_rates"].items()
    }
    assert set(_operations(spec)) - set(through) == {"GET " + SPEC}, through
    assert all(through.values()), through
    # The accepted failures are still the ones on file: nothing new slipped into the baseline.
    accepted = json.loads(BASELINE.read_text())["entries"]
    assert {entry["check"] for entry in accepted} == {"use_after_free"}


def _operations(spec: Any) -> list[str]:
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]
