"""tracker.js in real headless Chromium (Debian's `chromium`, driven by Playwright).

A site on one origin embeds the snippet; Trubka serves the script and the API on another.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from storage.db import Database
from telephony.tracking.script import snippet
from tests.conftest import AppFactory
from tests.tracking_support import CHROME, TOML, Client

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - the test extras install it
    async_playwright = None

CHROMIUM = os.environ.get("TRUBKA_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POOL = ["74950000011", "74950000012", "74950000013"]

PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Такси</title>
{snippet}</head>
<body>
<header><a class="zphone" id="head" href="tel:+74951234567">+7 (495) 123-45-67</a></header>
<main>
  <p id="text">Звоните: 8 (495) 123-45-67 или 8-495-123-45-67, круглосуточно.</p>
  <p id="plain">+74951234567</p>
  <a id="bare" href="tel:84951234567">позвонить</a>
  <span class="zphone" id="other">+7 800 555-35-35</span>
  <p id="unrelated">ИНН 7704953212, заказ 84951234567890</p>
</main>
<footer>
  <span id="foot">495 123 45 67</span>
  <a id="footlink" href="tel:+7 495 123-45-67">+7&nbsp;495&nbsp;123&#8209;45&#8209;67</a>
</footer>
<script>setTimeout(function () {{
  document.body.insertAdjacentHTML('beforeend', '<p id="late">8 495 123-45-67</p>');
}}, 300);</script>
</body></html>
"""


def require_browser() -> None:
    """CI must run this test: there a missing browser fails instead of skipping."""
    if async_playwright is None:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


class Site:
    """The customer's site: one page embedding the snippet."""

    def __init__(self) -> None:
        self.script_url = ""
        self.server = TestServer(self.app())
        self.origin = ""

    def app(self) -> web.Application:
        async def page(_request: web.Request) -> web.Response:
            html = PAGE.format(snippet=snippet(self.script_url, ["zphone"]))
            return web.Response(text=html, content_type="text/html")

        app = web.Application()
        app.router.add_get("/", page)
        return app


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site()
    await site.server.start_server()
    site.origin = str(site.server.make_url("")).rstrip("/")
    yield site
    await site.server.close()


@pytest.fixture
async def trubka(make_client: AppFactory, db: Database, tmp_path: Path, site: Site) -> Client:
    config = tmp_path / "trubka.toml"
    config.write_text(TOML.replace("https://shop.example", site.origin), encoding="utf-8")
    client = await make_client(db, config=str(config))
    site.script_url = str(client.make_url("/ct/tracker.js"))
    return client


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_browser()
    assert async_playwright is not None
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def open_page(browser: Any, url: str, errors: list[str]) -> tuple[Any, Any]:
    context = await browser.new_context(user_agent=CHROME)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return context, page


async def texts(page: Any) -> dict[str, Any]:
    script = """() => {
      const pick = (id) => document.getElementById(id);
      const out = {};
      const ids = ['head', 'text', 'plain', 'other', 'foot', 'footlink', 'late', 'unrelated'];
      for (const id of ids) out[id] = pick(id) ? pick(id).textContent : null;
      for (const id of ['head', 'bare', 'footlink']) {
        out[id + '.href'] = pick(id).getAttribute('href');
      }
      out.visibility = getComputedStyle(pick('head')).visibility;
      return out;
    }"""
    result: dict[str, Any] = await page.evaluate(script)
    return result


async def swapped(page: Any) -> dict[str, Any]:
    await page.wait_for_function(
        "() => document.getElementById('late') && "
        "document.getElementById('late').textContent !== '8 495 123-45-67' && "
        "document.getElementById('head').textContent !== '+7 (495) 123-45-67'",
        timeout=5000,
    )
    return await texts(page)


def expected(number: str) -> dict[str, Any]:
    """Every form on the page keeps its writing, with the new digits."""
    a, b, c, d = number[1:4], number[4:7], number[7:9], number[9:11]
    return {
        "head": f"+7 ({a}) {b}-{c}-{d}",
        "text": f"Звоните: 8 ({a}) {b}-{c}-{d} или 8-{a}-{b}-{c}-{d}, круглосуточно.",
        "plain": f"+{number}",
        "other": f"+7 ({a}) {b}-{c}-{d}",  # a marked element written otherwise: the mask
        "foot": f"{a} {b} {c} {d}",
        "footlink": f"+7\u00a0{a}\u00a0{b}\u2011{c}\u2011{d}",
        "late": f"8 {a} {b}-{c}-{d}",
        "unrelated": "ИНН 7704953212, заказ 84951234567890",
        "head.href": f"tel:+{number}",
        "bare.href": f"tel:+{number}",
        "footlink.href": f"tel:+{number}",
        "visibility": "visible",
    }


async def test_visitors_see_their_own_number_everywhere_and_keep_it(
    browser: Any, site: Site, trubka: Client
) -> None:
    errors: list[str] = []
    first_context, first = await open_page(browser, site.origin + "/", errors)
    seen = await swapped(first)
    number = seen["plain"].lstrip("+")
    assert number in POOL
    assert seen == expected(number)
    cookies = await first_context.cookies(site.origin)
    visit_cookie = next(c for c in cookies if c["name"] == "trubka_visit")
    assert len(visit_cookie["value"]) == 32

    # The page pings while it is visible (here: on becoming visible again).
    async with first.expect_request("**/ct/v1/ping") as pinged:
        await first.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    ping = await pinged.value
    assert json.loads(ping.post_data)["visit_id"] == visit_cookie["value"]
    assert (await (await ping.response()).json())["number"] == number

    # Another browser (its own cookies): another number.
    second_context, second = await open_page(browser, site.origin + "/", errors)
    other = await swapped(second)
    other_number = other["plain"].lstrip("+")
    assert other_number in POOL and other_number != number
    assert other == expected(other_number)

    # A reload keeps the visit and the number.
    await first.reload()
    again = await swapped(first)
    assert again == expected(number)
    after = {c["name"]: c["value"] for c in await first_context.cookies(site.origin)}
    assert after["trubka_visit"] == visit_cookie["value"]
    assert errors == []
    await first_context.close()
    await second_context.close()


ORIGINAL = {
    "head": "+7 (495) 123-45-67",
    "text": "Звоните: 8 (495) 123-45-67 или 8-495-123-45-67, круглосуточно.",
    "plain": "+74951234567",
    "head.href": "tel:+74951234567",
    "bare.href": "tel:84951234567",
}


async def original_stays(page: Any) -> None:
    # Marked phones are hidden at first and shown again within a second, untouched.
    await page.wait_for_function(
        "() => !document.getElementById('trubka-hide') && "
        "getComputedStyle(document.getElementById('head')).visibility === 'visible'",
        timeout=2000,
    )
    await page.wait_for_function("() => document.getElementById('late')", timeout=2000)
    seen = await texts(page)
    assert {key: seen[key] for key in ORIGINAL} == ORIGINAL
    assert seen["late"] == "8 495 123-45-67"


async def test_with_trubka_down_the_original_number_stays(
    browser: Any, site: Site, trubka: Client
) -> None:
    errors: list[str] = []
    # The API fails while the script loads (a 502 from the proxy) …
    context = await browser.new_context(user_agent=CHROME)
    await context.route("**/ct/v1/**", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(site.origin + "/")
    await original_stays(page)
    await context.close()

    # … and the whole server is down: the script itself does not load.
    await trubka.close()
    down_context, down = await open_page(browser, site.origin + "/", errors)
    await original_stays(down)
    await down_context.close()
    assert errors == []


@pytest.fixture
async def trubka_after_interaction(
    make_client: AppFactory, db: Database, tmp_path: Path, site: Site
) -> Client:
    text = TOML.replace("https://shop.example", site.origin).replace(
        "[tracking.lease]\n", "[tracking.lease]\nafter_interaction = true\n", 1
    )
    config = tmp_path / "trubka.toml"
    config.write_text(text, encoding="utf-8")
    client = await make_client(db, config=str(config))
    site.script_url = str(client.make_url("/ct/tracker.js"))
    return client


async def test_after_interaction_the_number_comes_only_once_the_visitor_acts(
    browser: Any, site: Site, trubka_after_interaction: Client
) -> None:
    errors: list[str] = []
    asked: list[str] = []
    context = await browser.new_context(user_agent=CHROME)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: asked.append(request.url))
    await page.goto(site.origin + "/")
    # A page nobody touches keeps the site's own number and takes nothing from the pool.
    await original_stays(page)
    await page.wait_for_timeout(500)
    assert not [url for url in asked if "/ct/v1/" in url]

    # The first pointer movement asks for a number; the page swaps it in everywhere.
    async with page.expect_request("**/ct/v1/visit"):
        await page.mouse.move(40, 60)
    seen = await swapped(page)
    number = seen["plain"].lstrip("+")
    assert number in POOL
    assert seen == expected(number)
    # Scrolling and typing later ask for nothing more: one visit per page.
    await page.mouse.wheel(0, 300)
    await page.keyboard.press("End")
    await page.wait_for_timeout(300)
    assert len([url for url in asked if url.endswith("/ct/v1/visit")]) == 1
    assert errors == []
    await context.close()
