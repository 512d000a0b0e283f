"""`trubka.toml`: structured settings (call tracking, leads, …), one section per concern.

Each concern owns a pydantic model for its section and reads it with `section()`; a wrong
value becomes a ConfigurationError naming the key (`tracking.pools[0].numbers`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.settings import ConfigurationError, Settings

DEFAULT_PATH = Path("trubka.toml")
# Every top-level section some part of Trubka reads; any other name is a typo (`[trackng]`)
# and stops the start instead of being ignored. A new concern adds its section here.
SECTIONS = frozenset({"tracking", "leads", "retention"})
Section = TypeVar("Section", bound=BaseModel)


class FileConfig:
    """The parsed file; empty when there is none (every section then takes its defaults)."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        self.data = data
        self.path = path

    def section(self, name: str, model: type[Section]) -> Section:
        try:
            return model.model_validate(self.data.get(name, {}))
        except ValidationError as exc:
            raise ConfigurationError("; ".join(_describe(name, exc))) from None


def _describe(section: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        key = section
        for part in error["loc"]:
            key += f"[{part}]" if isinstance(part, int) else f".{part}"
        problems.append(f"{key}: {error['msg']}")
    return problems


def load_file_config(settings: Settings) -> FileConfig:
    """TRUBKA_CONFIG if set (it must exist), else ./trubka.toml if present, else nothing."""
    path = Path(settings.config) if settings.config else DEFAULT_PATH
    if not path.exists():
        if settings.config:
            raise ConfigurationError(f"TRUBKA_CONFIG: file not found: {path}")
        return FileConfig({})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"TRUBKA_CONFIG: {path} is not valid TOML: {exc}") from None
    if unknown := sorted(set(data) - SECTIONS):
        raise ConfigurationError(
            f"TRUBKA_CONFIG: {path}: unknown section(s) {', '.join(f'[{n}]' for n in unknown)}; "
            f"known: {', '.join(f'[{n}]' for n in sorted(SECTIONS))}"
        )
    return FileConfig(data, path)
