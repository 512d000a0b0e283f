"""The pool simulator and `trubka pool plan`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from telephony.tracking.config import LeasePolicy
from telephony.tracking.simulate import (
    Attack,
    Fixed,
    Ours,
    Traffic,
    formula_size,
    make_visits,
    simulate,
    size_for,
)
from tests.tracking_support import TOML


def test_formula() -> None:
    assert [formula_size(n) for n in (50, 100, 200, 500, 1000)] == [1, 2, 3, 6, 11]


def test_deterministic_for_a_seed() -> None:
    traffic = Traffic(300, days=2, seed=7)
    first = simulate(traffic, 4, Ours(), make_visits(traffic))
    assert simulate(traffic, 4, Ours(), make_visits(traffic)) == first
    other = simulate(Traffic(300, days=2, seed=8), 4, Ours())
    assert other != first


def test_history_and_short_leases_beat_a_fixed_lease() -> None:
    traffic = Traffic(300, days=3)
    visits = make_visits(traffic)
    formula = formula_size(300)
    ours = [simulate(traffic, size, Ours(), visits).exact for size in (formula, 2 * formula)]
    fixed = [simulate(traffic, size, Fixed(), visits).exact for size in (formula, 2 * formula)]
    assert ours[0] > fixed[0] + 0.2
    assert ours[1] > ours[0] and fixed[1] > fixed[0]
    need = size_for(traffic, Ours(), 0.95, visits)
    assert need is not None and formula < need <= 4 * formula
    assert simulate(traffic, need, Ours(), visits).exact >= 0.95
    assert simulate(traffic, need - 1, Ours(), visits).exact < 0.95


def test_callers_on_the_page_with_enough_numbers_are_all_exact() -> None:
    traffic = Traffic(200, days=1, after_leaving_share=0.0, forgotten_tab_share=0.0)
    assert simulate(traffic, 50, Ours()).exact == 1.0
    # A late caller is lost to a fixed lease without history, found by ours within the grace.
    later = Traffic(200, days=1, after_leaving_share=1.0, late_share=0.0, forgotten_tab_share=0)
    assert simulate(later, 50, Ours(LeasePolicy(grace=3 * 3600))).exact > 0.99
    assert simulate(later, 50, Fixed()).exact < 0.9


def test_pool_plan_prints_the_recommendation_next_to_the_formula(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pool", "plan", "--visits-per-day", "300", "--days", "3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    traffic = Traffic(300, days=3)
    assert figures["formula"] == 4
    assert figures["recommended"] == size_for(traffic, Ours(), 0.95)
    assert figures["exact_at_formula"] > figures["exact_at_formula_fixed_lease"]

    assert main(["pool", "plan", "--visits-per-day", "300", "--days", "3"]) == 0
    text = capsys.readouterr().out
    assert "Novofon's formula (visits/100 + 1): 4 numbers" in text
    assert f"recommended (≥95.0% exact): {figures['recommended']} numbers" in text
    # Two live leases per address, six per /24 by default.
    need = figures["recommended"]
    assert figures["drain"] == {"addresses": -(-need // 2), "networks": -(-need // 6)}
    assert f"needs {figures['drain']['addresses']} public addresses" in text


def test_pool_plan_uses_the_configured_leases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trubka.toml"
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("TRUBKA_CONFIG", str(path))
    assert main(["pool", "plan", "--visits-per-day", "100", "--days", "2"]) == 0
    assert "pings every 30 s" in capsys.readouterr().out  # the test configuration's lease
    assert main(["pool", "plan", "--visits-per-day", "0"]) == 2
    assert "--visits-per-day" in capsys.readouterr().err


def test_a_drain_costs_real_visitors_only_without_limits() -> None:
    traffic = Traffic(1000, days=2)
    visits = make_visits(traffic)
    size = formula_size(1000)
    calm = simulate(traffic, size, Ours(), visits).exact
    drained = simulate(traffic, size, Ours(), visits, Attack()).exact
    refused = simulate(traffic, size, Ours(), visits, Attack(holds=20, refused_after_s=2.0))
    slow = simulate(traffic, size, Ours(), visits, Attack(holds=6)).exact
    assert drained < calm / 3  # 12 of 24 hours every number is the script's
    assert abs(refused.exact - calm) < 0.01
    assert drained < slow < calm


def test_engagement_aware_leasing_shows_the_static_number_until_interaction() -> None:
    traffic = Traffic(200, days=1, after_leaving_share=0.0, forgotten_tab_share=0.0)
    plenty = simulate(traffic, 50, Ours(engaged_only=True))
    # With numbers to spare, only callers who dial before their first interaction miss.
    assert 0.7 < plenty.exact < 1.0
    assert plenty.static == pytest.approx(1 - plenty.exact)
