"""What a page view tells about its visitor."""

from __future__ import annotations

import pytest

from telephony.tracking.visitors import (
    PageView,
    client_ip,
    device_type,
    ga_client_id,
    is_excluded,
    referrer_host,
)
from tests.tracking_support import CHROME, config


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        (CHROME, "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/126.0 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X)", "tablet"),
        (None, "desktop"),
    ],
)
def test_device_type(agent: str | None, device: str) -> None:
    assert device_type(agent) == device


def test_analytics_ids_and_referrers() -> None:
    assert ga_client_id("GA1.2.1234567890.1700000000") == "1234567890.1700000000"
    assert ga_client_id(None) is None
    assert referrer_host("https://www.Google.com/search?q=x", "https://shop.example/") == (
        "www.google.com"
    )
    assert referrer_host("https://shop.example/prices", "https://shop.example/") is None
    tags = PageView(url="https://shop.example/?utm_source=ya&utm_medium=cpc", utm_term="t").tags()
    assert (tags["utm_source"], tags["utm_medium"], tags["utm_term"]) == ("ya", "cpc", "t")


def test_addresses_behind_proxies_and_exclusions() -> None:
    cfg = config()
    assert client_ip(cfg, "127.0.0.1", "198.51.100.7, 10.0.0.1") == "10.0.0.1"
    assert client_ip(cfg, "127.0.0.1", "198.51.100.7") == "198.51.100.7"
    assert client_ip(cfg, "192.0.2.9", "198.51.100.7") == "192.0.2.9"  # not our proxy: ignored
    assert is_excluded(cfg, "203.0.113.200", CHROME)
    assert is_excluded(cfg, "198.51.100.7", CHROME)
    assert not is_excluded(cfg, "192.0.2.9", CHROME)
    assert is_excluded(cfg, "192.0.2.9", "Googlebot/2.1")
    assert is_excluded(cfg, "192.0.2.9", "")
    assert not is_excluded(cfg, "not an ip", CHROME)
