"""Replaying recorded MegaFon pushes through the real webhook over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.web.context import CALLS
from storage.outcome import Lane
from storage.types import utcnow
from telephony.providers.megafon import dedup_key
from tests.conftest import CRM_TOKEN

FIXTURES = Path(__file__).parent / "fixtures" / "megafon"


def load(name: str) -> list[dict[str, str]]:
    pushes = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))
    return [{key: str(value) for key, value in push.items()} for push in pushes]


def stored_push(key: str, call: str, lane: Lane = Lane.LIVE) -> dict[str, Any]:
    """A `call_events` row as the inbox stores a MegaFon INCOMING (for tests that fill the
    inbox without the webhook)."""
    return {
        "provider": "megafon",
        "dedup_key": key,
        "command": "event",
        "event_type": "INCOMING",
        "payload": "{}",
        "received_at": utcnow(),
        "lane": int(lane),
        "call_key": f"megafon:{call}",
    }


def stored_rings(
    numbers: Iterable[int], call_prefix: str, phone_prefix: str = "7900"
) -> list[dict[str, Any]]:
    """`call_events` rows of calls ringing, one INCOMING each (call `{call_prefix}{n}`), as the
    webhook stores them: the push's fields as the payload."""
    rows = []
    for n in numbers:
        fields = {
            "cmd": "event",
            "type": "INCOMING",
            "phone": f"{phone_prefix}{n:07d}",
            "callid": f"{call_prefix}{n}",
            "user": "andy",
            "ext": "701",
        }
        row = stored_push(dedup_key(fields), fields["callid"])
        rows.append({**row, "payload": json.dumps(fields)})
    return rows


async def push(
    client: TestClient[web.Request, web.Application],
    fields: dict[str, str],
    *,
    token: str | None = CRM_TOKEN,
    as_json: bool = False,
) -> tuple[int, Any]:
    body = dict(fields)
    if token is not None:
        body["crm_token"] = token
    if as_json:
        response = await client.post("/megafon_webhook", json=body)
    else:
        response = await client.post("/megafon_webhook", data=body)
    answer = await response.json()
    await settle(client)
    return response.status, answer


async def settle(client: TestClient[web.Request, web.Application]) -> None:
    """Wait until the app has applied every push it answered (the inbox applies them just after),
    and the jobs those pushes queued have run (a Novofon recording's link)."""
    context = client.app[CALLS]
    await context.inbox.drain()
    if context.jobs is not None:
        # Also when the app's own loop ran the job (drain() then waits for that pass and
        # counts nothing): what it stored is applied before the test reads.
        await context.jobs.drain()
        await context.inbox.drain()


async def replay(
    client: TestClient[web.Request, web.Application], pushes: list[dict[str, str]]
) -> list[Any]:
    answers = []
    for fields in pushes:
        status, answer = await push(client, fields)
        assert status == 200, (fields, answer)
        answers.append(answer)
    return answers
