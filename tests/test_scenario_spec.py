"""The scenario file's format: what a wrong file says (through `trubka serve`), conditions,
working hours and templates on their own."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from telephony.scenarios.conditions import holds
from telephony.scenarios.hours import WorkingHours, parse_spans
from telephony.scenarios.load import ScenarioError, parse_scenarios
from telephony.scenarios.spec import Condition
from telephony.scenarios.templates import TemplateFailure, render
from tests.scenario_support import EXAMPLES
from tests.test_megafon_call import run_cli

MOSCOW = ZoneInfo("Europe/Moscow")
SCENARIOS_PAGE = Path(__file__).parents[1] / "docs" / "scenarios.md"


def rule(body: str, name: str = "r1") -> str:
    return f"rules:\n  - name: {name}\n" + "".join(f"    {line}\n" for line in body.splitlines())


async def test_an_invalid_scenario_file_stops_serve_with_exit_2_naming_rule_and_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scenarios.yaml"
    path.write_text(
        rule("on: {call_status: Missed}\ndo:\n  - megafon_call: {client_phone: '1'}", "callback")
        + "  - name: ok\n    on: message\n    do: [{send_message: hi}]\n",
        encoding="utf-8",
    )
    env = {
        "TRUBKA_SCENARIOS": str(path),
        "TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
    }
    code, _, err = await run_cli(env, "serve")
    assert code == 2
    assert "TRUBKA_SCENARIOS" in err
    assert "rules[0] 'callback': do[0].megafon_call.user: Field required" in err


async def test_a_missing_or_broken_yaml_file_stops_serve_with_exit_2(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    code, _, err = await run_cli(
        {"TRUBKA_SCENARIOS": str(tmp_path / "nope.yaml"), "TRUBKA_DATABASE_URL": db}, "serve"
    )
    assert code == 2
    assert "configuration error: TRUBKA_SCENARIOS: file not found" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n  - name: x\n", encoding="utf-8")
    code, _, err = await run_cli(
        {"TRUBKA_SCENARIOS": str(broken), "TRUBKA_DATABASE_URL": db}, "serve"
    )
    assert code == 2
    assert "is not valid YAML" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            rule("on: message\ndo: [{send_mesage: hi}]"),
            "rules[0] 'r1': do[0]: unknown action 'send_mesage'",
        ),
        (
            rule("on: {call_status: Mised}\ndo: [{send_message: hi}]"),
            "rules[0] 'r1': on.call_status[0]",
        ),
        (rule("on: {calls: x}\ndo: [{send_message: hi}]"), "on: unknown trigger 'calls'"),
        (rule("on: {message: {regex: '('}}\ndo: [{send_message: hi}]"), "on.message.regex"),
        (
            rule("on: message\ndo: [{send_message: 'Привет, {{ client.name '}]"),
            "rules[0] 'r1': do[0].send_message.text: template error: unexpected end of template",
        ),
        (rule("on: message\ndo: [{wait: {}}]"), "do[0].wait: wait needs `for`"),
        (rule("on: message\ndo: [{wait: soon}]"), "'soon' is not a duration"),
        (rule("on: message\nif: [{score: {gt: many}}]\ndo: [{send_message: hi}]"), "if[0].test.gt"),
        (rule("on: message\ndo: []"), "rules[0] 'r1': do: List should have at least 1 item"),
        (
            rule("on: message\ndo: [{send_message: a}]") + "  - name: r1\n    on: message\n"
            "    do: [{send_message: b}]\n",
            "two rules are named 'r1'",
        ),
        ("working_hours: {mon-fri: '9-18'}\nrules: []", "working_hours: mon-fri: '9-18' is not"),
        ("working_hours: {weekdays: '09:00-18:00'}\nrules: []", "unknown day 'weekdays'"),
        ("- just a list", "the file must be a mapping"),
    ],
)
def test_what_a_wrong_file_says(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(text, MOSCOW)
    assert message in str(caught.value)


def test_the_shipped_examples_are_valid_and_the_docs_show_that_very_file() -> None:
    shipped = EXAMPLES.read_text(encoding="utf-8")
    scenarios = parse_scenarios(shipped, MOSCOW)
    assert [r.name for r in scenarios.rules] == [
        "missed call follow-up",
        "site form callback",
        "site callback",
        "call-me request in chat",
    ]
    # The page includes the file itself (pymdownx.snippets), so there is no copy to drift.
    page = SCENARIOS_PAGE.read_text(encoding="utf-8")
    assert '```yaml\n--8<-- "examples/scenarios.yaml"\n```' in page
    assert EXAMPLES.relative_to(SCENARIOS_PAGE.parents[1]).as_posix() == "examples/scenarios.yaml"


def test_yes_no_and_on_stay_words() -> None:
    scenarios = parse_scenarios(rule("on: message\ndo: [{set_variable: {x: no}}]"), MOSCOW)
    assert scenarios.rules[0].do[0].set_variable == {"x": "no"}


def check(raw: dict[str, Any], context: dict[str, Any], moment: datetime | None = None) -> bool:
    hours = WorkingHours(MOSCOW, {0: parse_spans("09:00-18:00")})
    now = moment or datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW)  # a Monday
    return holds(Condition.model_validate(raw), context, now, hours)


@pytest.mark.parametrize(
    ("raw", "context", "expected"),
    [
        ({"call.direction": "in"}, {"call": {"direction": "in"}}, True),
        ({"call.direction": "in"}, {"call": {"direction": "out"}}, False),
        ({"call.direction": "in"}, {"call": {}}, False),
        ({"call.duration": 60}, {"call": {"duration": 60}}, True),
        ({"score": "7"}, {"vars": {"score": "7.0"}}, True),
        ({"lead.is_need_callback": True}, {"lead": {"is_need_callback": True}}, True),
        ({"flag": True}, {"vars": {"flag": "true"}}, True),
        ({"flag": True}, {"vars": {"flag": "false"}}, False),
        (
            {"utm_source": {"one_of": ["yandex", "google"]}},
            {"vars": {"utm_source": "google"}},
            True,
        ),
        ({"utm_source": {"not_one_of": ["yandex"]}}, {"vars": {"utm_source": "yandex"}}, False),
        ({"utm_source": {"not_equals": "yandex"}}, {"vars": {}}, True),
        ({"message.text": {"regex": "(?i)^цен"}}, {"message": {"text": "Цена?"}}, True),
        ({"message.text": {"regex": "цен"}}, {"message": {}}, False),
        ({"call.duration": {"gt": 30, "le": 60}}, {"call": {"duration": 45}}, True),
        ({"call.duration": {"gt": 30, "le": 60}}, {"call": {"duration": 61}}, False),
        ({"call.duration": {"lt": 30}}, {"call": {"duration": None}}, False),
        ({"score": {"ge": 10}}, {"vars": {"score": "abc"}}, False),
        ({"email": {"exists": True}}, {"vars": {"email": ""}}, False),
        ({"any": [{"a": 1}, {"b": 2}]}, {"vars": {"b": "2"}}, True),
        ({"not": {"a": 1}}, {"vars": {"a": "1"}}, False),
        ({"working_hours": True}, {}, True),
        ({"working_hours": False}, {}, False),
    ],
)
def test_conditions(raw: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    assert check(raw, context) is expected


def test_working_hours_next_opening() -> None:
    text = (
        "working_hours: {mon-fri: '09:00-18:00', sat: ['10:00-12:00', '13:00-15:00']}\n"
        "holidays: ['2026-11-30']\nrules: []"
    )
    hours = parse_scenarios(text, MOSCOW).hours

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW)

    assert hours.is_open(at(27, 17, 59)) and not hours.is_open(at(27, 18))
    assert hours.next_open(at(27, 12)) == at(27, 12)
    assert hours.next_open(at(27, 18, 30)) == at(28, 10)  # Friday evening → Saturday
    assert hours.next_open(at(28, 12, 30)) == at(28, 13)  # Saturday's lunch break
    assert hours.next_open(at(28, 16)) == datetime(2026, 12, 1, 9, tzinfo=MOSCOW)
    # Sunday → Monday the 30th is a holiday → Tuesday 09:00.
    assert hours.next_open(at(29, 11)) == datetime(2026, 12, 1, 9, tzinfo=MOSCOW)
    assert hours.next_open(at(23, 8, 59)) == at(23, 9)


def test_templates_see_the_context_and_report_errors() -> None:
    context = {"client": {"name": "Ольга", "responsible": None}, "duty_manager": "andy"}
    assert render("{{ client.responsible or duty_manager }}", context) == "andy"
    assert render("Привет, {{ client.name | upper }}", context) == "Привет, ОЛЬГА"
    assert render("без шаблона", context) == "без шаблона"
    with pytest.raises(TemplateFailure, match=r"do\[0\]\.text: UndefinedError"):
        render("{{ lead.comment }}", context, "do[0].text")
    with pytest.raises(TemplateFailure, match="SecurityError"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", context)
