"""The report pages in real headless Chromium (Debian's `chromium`, driven by Playwright), on
`trubka demo`'s week: log in, open each page, check its chart is drawn, keep a screenshot.

Screenshots go to $TRUBKA_TEST_ARTIFACTS (default: <tmp>/trubka-artifacts/reports); the
test prints where.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.commands.demo_data import DemoShape, fill
from storage.db import Database
from tests.conftest import API_TOKEN, AppFactory
from tests.test_tracking_browser import browser, require_browser  # noqa: F401  (fixture)

ARTIFACTS = Path(os.environ.get("TRUBKA_TEST_ARTIFACTS") or tempfile.gettempdir()) / (
    "trubka-artifacts/reports"
)
PAGES = ("calls", "missed", "leads", "tracking")


async def test_each_report_page_draws_its_chart(
    browser: Any,  # noqa: F811
    make_client: AppFactory,
    db: Database,
) -> None:
    require_browser()
    from zoneinfo import ZoneInfo

    await fill(db, ZoneInfo("Europe/Moscow"), DemoShape())
    client = await make_client(db)
    base = str(client.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.goto(base + "/reports/")
    assert page.url.startswith(base + "/reports/login")
    await page.fill("input[name=token]", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/reports/calls")

    saved: list[Path] = []
    for name in PAGES:
        await page.goto(f"{base}/reports/{name}")
        chart = page.locator("svg.chart").first
        await chart.wait_for(state="visible")
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 150
        marks = await page.locator("svg.chart").first.locator("rect, polyline").count()
        assert marks > 3, f"{name}: the chart has no data drawn"
        ticks = await page.locator("svg.chart").first.locator("text.xtick").count()
        assert ticks >= 5, f"{name}: the x axis has no labels"
        path = ARTIFACTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    # Over 31 days the pools are drawn day by day (the demo's week at the end of 40 days).
    today = date.today().isoformat()
    first = (date.today() - timedelta(days=39)).isoformat()
    await page.goto(f"{base}/reports/tracking?from={first}&to={today}")
    chart = page.locator("svg.chart").first
    await chart.wait_for(state="visible")
    assert await page.locator("h2", has_text="Загрузка по дням").count() == 1
    assert await chart.locator("polyline").count() >= 1
    path = ARTIFACTS / "tracking-40-days.png"
    await page.screenshot(path=str(path), full_page=True)
    saved.append(path)

    # On a phone: the same page fits the screen (no sideways scrolling of the page itself).
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        has_touch=True,
    )
    await phone.add_cookies(await context.cookies())
    mobile = await phone.new_page()
    await mobile.goto(f"{base}/reports/missed")
    await mobile.locator("svg.chart").first.wait_for(state="visible")
    width = await mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    path = ARTIFACTS / "missed-phone.png"
    await mobile.screenshot(path=str(path), full_page=True)
    saved.append(path)
    await phone.close()
    await context.close()

    assert errors == []
    print("report screenshots:", *saved, sep="\n  ")
