"""The deploy files tell the truth: `.env.example` and `examples/trubka.toml` cover every
setting and load as they are; compose.yaml runs replicas that wait for a healthy database.
(`docker compose config` itself runs in .ci/run.)"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from bot.app import check_files
from bot.settings import KNOWN_VARIABLES, Settings, unknown_dotenv_variables
from telephony.access.retention import RetentionConfig
from telephony.leads.config import LeadsConfig
from telephony.tracking import TrackingConfig

REPO = Path(__file__).parents[1]


def test_env_example_names_every_setting_and_nothing_else() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*(TRUBKA_[A-Z_]+)=", text, re.MULTILINE))
    assert named == set(KNOWN_VARIABLES)
    assert unknown_dotenv_variables(REPO / ".env.example") == []
    Settings(_env_file=REPO / ".env.example")  # type: ignore[call-arg]


def _missing(model: type[BaseModel], values: Any, path: str) -> list[str]:
    """Fields of `model` (and of the models inside it) that no entry of `values` shows."""
    entries = values if isinstance(values, list) else [values]
    found: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        given = [entry[key] for entry in entries if key in entry]
        if not given:
            found.append(f"{path}.{key}")
            continue
        for inner in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                flat = [v for g in given for v in (g if isinstance(g, list) else [g])]
                found += _missing(inner, flat, f"{path}.{key}")
    return found


def test_the_example_trubka_toml_shows_every_key_and_loads() -> None:
    example = REPO / "examples" / "trubka.toml"
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    assert _missing(TrackingConfig, data["tracking"], "tracking") == []
    assert _missing(LeadsConfig, data["leads"], "leads") == []
    assert _missing(RetentionConfig, data["retention"], "retention") == []
    check_files(Settings(_env_file=None, config=str(example)))  # type: ignore[call-arg]


def test_compose_runs_two_replicas_after_a_healthy_postgres() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    replicas = [s for s in services.values() if s.get("image") == "trubka:latest"]
    assert len(replicas) >= 2
    for replica in replicas:
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "/healthz" in " ".join(replica["healthcheck"]["test"])
        assert replica["environment"]["TRUBKA_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "healthcheck" in services["postgres"]


def test_the_image_runs_as_a_user_with_a_healthcheck() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2  # multi-stage
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.MULTILINE)
