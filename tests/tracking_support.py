"""A `[tracking]` configuration for tests and helpers to serve the app with it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from telephony.tracking import TrackingConfig, check

SITE = "https://shop.example"
DEFAULT = "74951234567"
DIRECT = ["74950000001", "74950000002"]
DIRECT_STATIC = "74950000009"
SITE_POOL = ["74950000011", "74950000012", "74950000013"]
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

TOML = f"""
[tracking]
sites = ["{SITE}"]
default_number = "+7 (495) 123-45-67"
mask = "+7 (XXX) XXX-XX-XX"
exclude_ips = ["203.0.113.0/24", "198.51.100.7"]

[tracking.lease]
ping_interval = 30
idle_timeout = 90
max_length = 3600
grace = 1800
visit_timeout = 1800

[[tracking.pools]]
name = "direct"
source = "Яндекс.Директ"
utm_source = ["yandex", "ya*"]
utm_medium = ["cpc"]
numbers = ["+7 (495) 000-00-01", "8 495 000 00 02"]
static_number = "+7 495 000-00-09"

[[tracking.pools]]
name = "site"
source = "Сайт"
default = true
numbers = ["74950000011", "74950000012", "74950000013"]
"""


def config(text: str = TOML) -> TrackingConfig:
    parsed = TrackingConfig.model_validate(tomllib.loads(text)["tracking"])
    check(parsed)
    return parsed


def write_config(tmp_path: Path, text: str = TOML) -> str:
    path = tmp_path / "trubka.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


Client = TestClient[web.Request, web.Application]


async def visit(
    client: Client,
    url: str = f"{SITE}/",
    *,
    origin: str | None = SITE,
    agent: str = CHROME,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[int, Any]:
    """POST /ct/v1/visit the way tracker.js does (JSON as text/plain)."""
    sent = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": agent, **(headers or {})}
    if origin is not None:
        sent["Origin"] = origin
    response = await client.post(
        "/ct/v1/visit", data=json.dumps({"url": url, **fields}), headers=sent
    )
    return response.status, await response.json()
