"""Lead text templates with Roistat's variable names (`{caller}`, `{utmSource}`, …).

A variable we know is substituted. A visit variable we do not know (`{city}`, or `{utmSource}`
without attribution) is left in place: Roistat substitutes its own variables from the visit.
Our own variables (`{recordLink}`, `{manager}`, `{duration}`, …) are always substituted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")

# Variables only Trubka knows: an unknown value becomes "" rather than a literal placeholder.
OWN_VARIABLES = frozenset(
    {
        "caller",
        "callee",
        "callDate",
        "recordLink",
        "manager",
        "duration",
        "talkDuration",
        "status",
        "direction",
        "phone",
        "name",
        "email",
        "comment",
        "leadSource",
    }
)


def render(
    template: str,
    values: Mapping[str, str | None],
    limit: int | None = None,
    *,
    keep_unknown: bool = True,
) -> str:
    """Substitute variables; `keep_unknown=False` (Metrika) blanks every unknown one."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value:
            return value
        return match.group(0) if keep_unknown and name not in OWN_VARIABLES else ""

    text = _VARIABLE.sub(substitute, template).strip()
    return text[:limit] if limit is not None else text
