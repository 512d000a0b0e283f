"""Reading the scenario file: YAML → validated rules, or one message naming rule and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from telephony.scenarios.hours import WorkingHours
from telephony.scenarios.spec import Rule, ScenarioFile


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 `on:` (the trigger key) would be True,
    and `yes`/`no`/`off` would stop being the words a user wrote."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class ScenarioError(ValueError):
    """The scenario file is wrong; the message names the file, the rule and the field."""


@dataclass(frozen=True)
class Scenarios:
    rules: tuple[Rule, ...]
    hours: WorkingHours
    duty_manager: str | None = None
    path: Path | None = None

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def for_trigger(self, kind: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.enabled and rule.on.kind == kind]


def parse_scenarios(text: str, zone: ZoneInfo, path: Path | None = None) -> Scenarios:
    where = str(path) if path else "scenarios"
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: the file must be a mapping with `rules:`")
    try:
        parsed = ScenarioFile.model_validate(data)
        hours = WorkingHours(zone, parsed.week(), frozenset(parsed.holidays))
    except ValidationError as exc:
        raise ScenarioError(f"{where}: " + "; ".join(_describe(exc, data))) from None
    return Scenarios(tuple(parsed.rules), hours, parsed.duty_manager, path)


def load_scenarios(path: Path, zone: ZoneInfo) -> Scenarios:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc}") from None
    return parse_scenarios(text, zone, path)


def _describe(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """`rules[1] "missed call": do[2].megafon_call.user: Field required`."""
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        head = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            rules = data.get("rules")
            name = None
            if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
                name = rules[index].get("name")
            head = f"rules[{index}]" + (f" {str(name)!r}" if name else "") + ": "
            loc = loc[2:]
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{head}{path or 'file'}: {message}")
    return problems
