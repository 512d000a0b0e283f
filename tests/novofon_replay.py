"""Replaying signed Novofon webhooks (tests/fixtures/novofon/*.yaml) through the real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.megafon_replay import settle

FIXTURES = Path(__file__).parent / "fixtures" / "novofon"

AppClient = TestClient[web.Request, web.Application]


def load(name: str) -> list[dict[str, str]]:
    """Each webhook's form fields plus its `Signature` header, as recorded."""
    pushes = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))
    return [{key: str(value) for key, value in push.items()} for push in pushes]


def by_event(pushes: list[dict[str, str]], event: str) -> dict[str, str]:
    return next(push for push in pushes if push["event"] == event)


async def send(
    client: AppClient, recorded: dict[str, str], *, signature: str | None = "recorded"
) -> tuple[int, Any]:
    """POST one webhook as Novofon does: form body, `Signature` header."""
    fields = {k: v for k, v in recorded.items() if k != "Signature"}
    headers = {}
    if signature == "recorded":
        headers["Signature"] = recorded["Signature"]
    elif signature is not None:
        headers["Signature"] = signature
    response = await client.post("/novofon_webhook", data=fields, headers=headers)
    text = await response.text()
    await settle(client)
    try:
        return response.status, await response.json()
    except ValueError:
        return response.status, text


async def replay(client: AppClient, pushes: list[dict[str, str]]) -> list[Any]:
    answers = []
    for recorded in pushes:
        status, answer = await send(client, recorded)
        assert status == 200, (recorded, answer)
        answers.append(answer)
    return answers
