"""Templates in scenario texts and parameters: Jinja2's sandbox, undefined names are errors.

Why the sandbox: scenario files are written by users; a template must not reach Python
internals. Why StrictUndefined: a misspelt variable should be reported, not sent as "".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateFailure(Exception):
    """A template could not be rendered; the message says where and why."""


def check_template(text: str) -> str:
    """Compile once at load time: a syntax error stops the start (pydantic names the field)."""
    try:
        _compiled(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template error: {exc.message} (line {exc.lineno})") from None
    return text


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Template:
    return _ENV.from_string(text)


def render(text: str, context: dict[str, Any], where: str = "") -> str:
    """Render `text`; any failure (undefined name, sandbox refusal, a bad filter) is a
    TemplateFailure naming `where` (the action's field)."""
    if "{" not in text:
        return text
    try:
        return _compiled(text).render(context)
    except Exception as exc:
        place = f"{where}: " if where else ""
        raise TemplateFailure(f"{place}{exc.__class__.__name__}: {exc}") from None
