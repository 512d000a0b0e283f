"""Checking a rule's `if` against what is known about the client, the call and the trigger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from telephony.scenarios.hours import WorkingHours
from telephony.scenarios.spec import Condition, Test

# Top-level names of the context; any other name is a client variable.
SECTIONS = frozenset(
    {
        "client",
        "call",
        "lead",
        "message",
        "variable",
        "delivery",
        "since",
        "trigger",
        "vars",
        "now",
        "telegram_link",
    }
)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """`call.direction` → context["call"]["direction"]; `utm_source` → the client variable."""
    head, _, rest = path.partition(".")
    if head not in SECTIONS:
        return context.get("vars", {}).get(path)
    value: Any = context.get(head)
    for part in rest.split(".") if rest else ():
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def same(actual: Any, expected: Any) -> bool:
    """Numbers compare as numbers, booleans as true/false, the rest as text (`in` == "in")."""
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return a == b
    if isinstance(actual, bool) or isinstance(expected, bool):  # "True", "true", true
        return _text(actual).lower() == _text(expected).lower()
    return _text(actual) == _text(expected)


def passes(test: Test, actual: Any) -> bool:
    given = test.model_fields_set
    if "equals" in given and not same(actual, test.equals):
        return False
    if "not_equals" in given and same(actual, test.not_equals):
        return False
    if test.one_of is not None and not any(same(actual, item) for item in test.one_of):
        return False
    if test.not_one_of is not None and any(same(actual, item) for item in test.not_one_of):
        return False
    if test.regex is not None and (actual is None or not test.regex.search(_text(actual))):
        return False
    if test.exists is not None and (actual not in (None, "")) != test.exists:
        return False
    bounds = (test.gt, test.ge, test.lt, test.le)
    if any(bound is not None for bound in bounds):
        number = _number(actual)
        if number is None:
            return False  # not a number: no comparison holds
        if test.gt is not None and not number > test.gt:
            return False
        if test.ge is not None and not number >= test.ge:
            return False
        if test.lt is not None and not number < test.lt:
            return False
        if test.le is not None and not number <= test.le:
            return False
    return True


def holds(
    condition: Condition, context: Mapping[str, Any], now: datetime, hours: WorkingHours
) -> bool:
    if condition.working_hours is not None:
        return hours.is_open(now) == condition.working_hours
    if condition.any is not None:
        return any(holds(inner, context, now, hours) for inner in condition.any)
    if condition.not_ is not None:
        return not holds(condition.not_, context, now, hours)
    assert condition.field is not None and condition.test is not None
    return passes(condition.test, lookup(context, condition.field))


def first_failing(
    conditions: Sequence[Condition], context: Mapping[str, Any], now: datetime, hours: WorkingHours
) -> str | None:
    """None when all hold, else a short description of the first that does not."""
    for index, condition in enumerate(conditions):
        if not holds(condition, context, now, hours):
            return f"if[{index}] {describe(condition)}"
    return None


def describe(condition: Condition) -> str:
    if condition.working_hours is not None:
        return f"working_hours: {_text(condition.working_hours)}"
    if condition.any is not None:
        return "any: [" + ", ".join(describe(inner) for inner in condition.any) + "]"
    if condition.not_ is not None:
        return f"not: {describe(condition.not_)}"
    assert condition.test is not None
    test = {name: getattr(condition.test, name) for name in condition.test.model_fields_set}
    shown = {k: (v.pattern if hasattr(v, "pattern") else v) for k, v in test.items()}
    return f"{condition.field}: {shown}"
