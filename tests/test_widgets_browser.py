"""The site widgets in real headless Chromium: the callback button appears after the page settled
without moving anything, a visitor leaves a phone, the fake PBX gets the makecall within a second
(working hours), and the lead with the visit's UTM tags reaches the fake Roistat and Metrika."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from storage.db import Database
from tests.fakes.megafon import FakePbx
from tests.leads_harness import Harness, HarnessFactory
from tests.megafon_replay import load, replay
from tests.test_tracking_browser import Site, browser, site  # noqa: F401  (fixtures)
from tests.test_widgets import MONDAY_10, PHONE
from tests.tracking_support import CHROME
from tests.widgets_support import DUTY, EXAMPLES, METRIKA_ID, ROISTAT_VISIT, widget_toml

SCREENSHOT = Path(__file__).parents[1] / "docs" / "img" / "widget.png"
QUERY = "?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&utm_content=banner"
# Every element's box on the page, the widget's own host left out.
BOXES = """() => Array.from(document.body.querySelectorAll('*'))
  .filter((e) => e.id !== 'trubka-widget')
  .map((e) => { const r = e.getBoundingClientRect();
                return [e.tagName, e.id, r.x, r.y, r.width, r.height]; })"""


async def test_a_visitor_asks_for_a_callback_and_the_pbx_rings_within_a_second(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
    make_harness: HarnessFactory,
    db: Database,
    fake_pbx: FakePbx,
) -> None:
    toml = (
        widget_toml()
        .replace("https://shop.example", site.origin)
        .replace("delay_ms = 200", "delay_ms = 1000")
    )
    h: Harness = await make_harness(db, toml, scenarios=str(EXAMPLES))
    h.clock.set(MONDAY_10.astimezone(UTC))
    site.script_url = str(h.client.make_url("/ct/tracker.js"))

    errors: list[str] = []
    context = await browser.new_context(
        user_agent=CHROME, viewport={"width": 900, "height": 640}, locale="ru-RU"
    )
    await context.add_cookies(
        [
            {"name": "_ym_uid", "value": METRIKA_ID, "url": site.origin},
            {"name": "roistat_visit", "value": ROISTAT_VISIT, "url": site.origin},
        ]
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(site.origin + "/" + QUERY)
    # The numbers are swapped and the late paragraph is in: the page has settled.
    await page.wait_for_function(
        "() => document.getElementById('late') && "
        "document.getElementById('late').textContent !== '8 495 123-45-67'",
        timeout=5000,
    )
    assert await page.evaluate("() => !document.getElementById('trubka-widget')")
    before = await page.evaluate(BOXES)

    button = page.get_by_role("button", name="Перезвоните мне")
    await button.wait_for(state="visible", timeout=5000)
    assert await page.evaluate(BOXES) == before  # nothing moved
    assert await button.get_attribute("aria-expanded") == "false"
    await button.click()
    assert await button.get_attribute("aria-expanded") == "true"
    phone = page.get_by_label("Ваш телефон")
    await phone.fill("8 900 444-33-22")
    await page.get_by_label("Имя (необязательно)").fill("Анна")
    # The visitor is told at once; from that answer the PBX is asked within a second.
    async with page.expect_response("**/ct/v1/callback") as answered:
        await page.get_by_role("button", name="Жду звонка").click()
    sent = time.perf_counter()
    assert (await (await answered.value).json()) == {"status": "calling"}
    await page.get_by_role("status").filter(has_text="Перезваниваем…").wait_for(timeout=5000)
    for _ in range(100):  # the app's own scheduler places the call: nobody drives it here
        if fake_pbx.makecalls() or time.perf_counter() - sent > 1.0:
            break
        await asyncio.sleep(0.01)
    rang = time.perf_counter() - sent
    [makecall] = fake_pbx.makecalls()
    assert makecall.json == {"phone": PHONE, "user": DUTY}
    assert rang < 1.0, rang
    assert await page.evaluate(BOXES) == before  # the open form did not move anything either
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT))
    assert errors == []
    await context.close()

    # The lead carries the visit: Roistat gets its tags and visit, Metrika the call's ClientID.
    [lead] = await h.leads_rows()
    assert (lead.source, lead.utm_source, lead.utm_campaign) == ("callback", "yandex", "spring")
    await h.drain()
    [roistat_lead] = h.roistat.leads()
    assert roistat_lead.params["roistat"] == ROISTAT_VISIT
    assert roistat_lead.params["fields[source]"] == "yandex"
    assert roistat_lead.params["fields[content]"] == "banner"
    await replay(h.client, [{**p, "phone": PHONE} for p in load("outbound_requested")])
    assert h.leads.metrika is not None
    assert await h.leads.metrika.upload_due() == 1
    [upload] = h.metrika.uploads
    assert METRIKA_ID in upload.csv
