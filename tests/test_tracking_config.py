"""A wrong `[tracking]` stops `trubka serve` with exit code 2 and a message naming the key."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import pytest

from bot.cli import main
from tests.tracking_support import TOML, config


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def broken(old: str, new: str) -> str:
    assert old in TOML
    return TOML.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (broken('"8 495 000 00 02"', '"+7 495 000-00"'), "tracking.pools[0].numbers[1]"),
        (broken('"8 495 000 00 02"', '"74950000011"'), "tracking.pools[1].numbers[0]"),
        (broken('numbers = ["+7 (495)', 'nubmers = ["+7 (495)'), "tracking.pools[0].nubmers"),
        (broken("idle_timeout = 90", "idle_timeout = 20"), "tracking.lease.idle_timeout"),
        (broken("grace = 1800", 'grace = "half an hour"'), "tracking.lease.grace"),
        (broken('default_number = "+7 (495) 123-45-67"', ""), "tracking.default_number"),
        (broken('sites = ["https://shop.example"]', 'sites = ["shop.example"]'), "tracking.sites"),
        (broken('sites = ["https://shop.example"]', "sites = []"), "tracking.sites"),
        (broken('"198.51.100.7"', '"office"'), "tracking.exclude_ips"),
        (broken('mask = "+7 (XXX) XXX-XX-XX"', 'mask = "+7 (ddd)"'), "tracking.mask"),
        (broken('name = "site"', 'name = "direct"'), "tracking.pools[1].name"),
        (
            broken('utm_medium = ["cpc"]', 'utm_medium = ["cpc"]\ndefault = true'),
            "tracking.pools[1].default",
        ),
        (broken("default = true", "default = false"), "tracking.pools[1]"),
        (
            broken('static_number = "+7 495 000-00-09"', 'static_number = "+7 495 123-45-67"'),
            "tracking.pools[0].static_number",
        ),
        (broken("[tracking.lease]", "[tracking.lease]\nping = 5"), "tracking.lease.ping"),
        (
            broken("[tracking.lease]", "[tracking.limits]\nburst = 0\n[tracking.lease]"),
            "tracking.limits.burst",
        ),
        (
            broken("[tracking.lease]", "[tracking.short_calls]\nseconds = -1\n[tracking.lease]"),
            "tracking.short_calls.seconds",
        ),
        (
            broken("[tracking.lease]", '[tracking.lease]\nafter_interaction = "yes please"'),
            "tracking.lease.after_interaction",
        ),
    ],
)
def test_serve_refuses_a_wrong_tracking_section(
    text: str,
    key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "trubka.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TRUBKA_CONFIG", str(path))
    monkeypatch.setenv("TRUBKA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    # Were the section accepted, serve would run: stop it after a while so the test fails fast.
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.alarm(20)
    try:
        code = main(["serve", "--port", "18099"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("configuration error: ")
    assert f"{key}:" in error, error
    assert not (tmp_path / "x.db").exists()  # stopped before touching anything


def test_the_test_configuration_is_valid_and_formats_numbers() -> None:
    parsed = config()
    assert parsed.enabled
    assert parsed.pools[0].numbers == ["74950000001", "74950000002"]
    assert parsed.format("74950000001") == "+7 (495) 000-00-01"
    assert parsed.sites == ["https://shop.example"]


def test_the_documented_tracking_section_is_valid() -> None:
    page = (Path(__file__).parent.parent / "docs" / "tracking.md").read_text(encoding="utf-8")
    block = page.split("```toml\n", 1)[1].split("```", 1)[0]
    parsed = config(block)
    assert [pool.name for pool in parsed.pools] == ["direct", "search", "other"]
    assert parsed.format(parsed.pools[0].numbers[0]) == "+7 (495) 000-00-01"
