"""The app with call tracking, the site widgets and the shipped scenarios, for the widget tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.tracking_support import CHROME, SITE, TOML

EXAMPLES = Path(__file__).parents[1] / "examples" / "scenarios.yaml"
# The duty manager of the shipped scenario file: the PBX rings them first.
DUTY = "admin@vats123456.megapbx.ru"
AD = f"{SITE}/taxi?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&utm_content=banner"
METRIKA_ID = "1699999999123456789"
ROISTAT_VISIT = "777001"
WIDGETS = """
[tracking.widgets]
enabled = true
delay_ms = 200
telegram_bot = "shop_bot"
"""
ROISTAT_FIELDS = """
[leads.roistat]
fields = {source = "{utmSource}", campaign = "{utmCampaign}", content = "{utmContent}"}
"""

Client = TestClient[web.Request, web.Application]


def widget_toml(extra: str = "") -> str:
    """The leads harness puts this after its `[leads]` lines."""
    return ROISTAT_FIELDS + TOML + WIDGETS + extra


async def ask_callback(
    client: Client, visit_id: str | None, phone: str, *, address: str | None = None, **more: Any
) -> tuple[int, Any]:
    headers = {"Content-Type": "text/plain", "Origin": SITE, "User-Agent": CHROME}
    if address is not None:  # the test client is 127.0.0.1, a trusted proxy: believed
        headers["X-Forwarded-For"] = address
    body = {"visit_id": visit_id, "phone": phone, **more}
    response = await client.post("/ct/v1/callback", data=json.dumps(body), headers=headers)
    return response.status, await response.json()
