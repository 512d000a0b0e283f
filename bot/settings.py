"""Settings from the environment and `.env` (names as in CONTRACT.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from telephony.channels.limits import parse_quiet_hours

ENV_PREFIX = "TRUBKA_"
ENV_FILE = ".env"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s):// URL")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = "sqlite+aiosqlite:///./trubka.db"
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = "http://localhost:8080"
    api_token: SecretStr | None = None
    config: str | None = None
    scenarios: str | None = None
    timezone: str = "Europe/Moscow"

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_managers_chat_id: int | None = None
    telegram_admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    # The send scheduler's budgets (Telegram: ≈20 sends a minute per group, edits included;
    # ≈1 a second per private chat; ≈30 a second in all). 0 = unlimited.
    telegram_group_per_minute: float = Field(default=20, ge=0)
    telegram_group_burst: int = Field(default=5, ge=1)
    telegram_chat_per_second: float = Field(default=1, ge=0)
    telegram_chat_burst: int = Field(default=3, ge=1)
    telegram_global_per_second: float = Field(default=30, ge=0)
    # Only for tests and the bench against a fake Bot API with shorter windows: < 1 shrinks
    # every budget window (0.01: a group's minute lasts 0.6 s).
    telegram_time_scale: float = Field(default=1.0, gt=0, le=1)
    # The older settings, still accepted: seconds between two sends (0 = unpaced); when set
    # they replace the group / private chat budget with one of burst 1.
    telegram_group_interval: float | None = Field(default=None, ge=0)
    telegram_chat_interval: float | None = Field(default=None, ge=0)
    # Private alerts: a ringing call to the responsible (known client) or on-duty managers.
    telegram_private_alerts: bool = True
    # Minutes after which a missed call nobody took is escalated privately with «Беру» (0 = off).
    telegram_escalate_after: float = Field(default=10, ge=0)

    megafon_url: str | None = None
    megafon_api_key: SecretStr | None = None
    megafon_crm_token: SecretStr | None = None
    megafon_api: Literal["v1", "legacy"] = "v1"
    megafon_timeout: float = Field(default=10.0, gt=0)

    novofon_url: str = "https://api.novofon.com"
    novofon_key: str | None = None
    novofon_secret: SecretStr | None = None
    novofon_timeout: float = Field(default=10.0, gt=0)
    # NOTIFY_START answers {"redirect": <ext>}: a known client rings their responsible manager.
    novofon_route_to_responsible: bool = False
    # When set, POST /novofon_calltracking must carry ?token=<it> (put it in the URL you save).
    novofon_calltracking_token: SecretStr | None = None

    roistat_url: str = "https://cloud.roistat.com"
    roistat_key: SecretStr | None = None
    roistat_api_key: SecretStr | None = None
    roistat_project: str | None = None

    metrika_url: str = "https://api-metrika.yandex.net"
    metrika_token: SecretStr | None = None
    metrika_counter_id: int | None = None
    metrika_upload_interval: int = Field(default=600, ge=10)

    # SMS through SMS.ru: the api_id turns it on (SMS.ru cabinet → API).
    smsru_api_id: SecretStr | None = None
    smsru_url: str = "https://sms.ru"
    smsru_timeout: float = Field(default=10.0, gt=0)
    # true: SMS.ru checks every send (test=1) but sends and charges nothing.
    smsru_test: bool = False
    # An approved sender name (SMS.ru cabinet → Отправители); unset = SMS.ru's default.
    sms_sender: str | None = None
    # SMS a day for the whole bot, whatever the scenarios do (0: none).
    sms_daily_limit: int = Field(default=200, ge=0)
    # WhatsApp Business Cloud API: the token and phone number id send; the app secret checks
    # X-Hub-Signature-256 on webhooks; the verify token answers Meta's hub.challenge handshake.
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_url: str = "https://graph.facebook.com"
    whatsapp_template_language: str = Field(default="ru", min_length=2, max_length=16)

    redis_url: str | None = None

    # Channels (issue 20): what every SMS / WhatsApp send must pass, and the Telegram deep
    # links (`https://t.me/<bot>?start=<token>`) that move a client from SMS to Telegram.
    # Quiet hours in TRUBKA_TIMEZONE (`21:00-09:00`, `off`): sends wait for the morning.
    channel_quiet_hours: str = "21:00-09:00"
    # SMS + WhatsApp messages to one client a day (0 = no cap).
    channel_client_daily_limit: int = Field(default=5, ge=0)
    # The bot's username for deep links (without @); unset: no links.
    telegram_bot_username: str | None = None
    # Signs deep-link tokens; unset: derived from TRUBKA_TELEGRAM_TOKEN.
    link_secret: SecretStr | None = None
    link_ttl_days: int = Field(default=30, ge=1, le=3650)

    # /healthz answers 503 when the oldest unapplied PBX push waited longer than this (seconds),
    # or a durable queue's oldest due item did (the Telegram queue is paced, so it gets longer).
    inbox_stuck_after: float = Field(default=60.0, gt=0)
    queue_stuck_after: float = Field(default=900.0, gt=0)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator(
        "public_url",
        "telegram_api_url",
        "telegram_webhook_url",
        "megafon_url",
        "novofon_url",
        "roistat_url",
        "metrika_url",
        "smsru_url",
        "whatsapp_url",
    )
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("sms_sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        # A sender is a name of up to 11 characters or a number of up to 15 digits (SMS.ru).
        if value is None or value == "":
            return None
        limit = 15 if value.isdigit() else 11
        if len(value) > limit or not value.isprintable() or not value.isascii():
            raise ValueError("must be a sender name of up to 11 Latin characters or a number")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
        return value.upper()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("channel_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)  # ValueError names the format
        return value

    @field_validator("telegram_bot_username")
    @classmethod
    def _bot_username(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = value.strip().lstrip("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", name):
            raise ValueError("a Telegram bot username such as trubka_bot")
        return name

    @field_validator("telegram_admin_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def secret(value: SecretStr | None) -> str | None:
    """A secret setting's value (None when unset); the one place secrets are unwrapped."""
    return value.get_secret_value() if value is not None else None


class ConfigurationError(Exception):
    """A setting is set but invalid; the message names the environment variable."""


def variable(field: str) -> str:
    """The environment variable of a settings field: `megafon_url` → `TRUBKA_MEGAFON_URL`."""
    return f"{ENV_PREFIX}{field.upper()}"


KNOWN_VARIABLES = frozenset(variable(name) for name in Settings.model_fields)


def unknown_dotenv_variables(path: Path) -> list[str]:
    """TRUBKA_* names in a `.env` file that no setting reads (a typo would be silently ignored).
    TRUBKA_TEST_* belong to the test suite."""
    if not path.is_file():
        return []
    names = dotenv_values(path).keys()
    return sorted(
        name
        for name in names
        if name.upper().startswith(ENV_PREFIX)
        and not name.upper().startswith(f"{ENV_PREFIX}TEST_")
        and name.upper() not in KNOWN_VARIABLES
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one message naming each bad variable."""
    if unknown := unknown_dotenv_variables(Path(ENV_FILE)):
        raise ConfigurationError(
            f"{ENV_FILE}: unknown setting(s) {', '.join(unknown)} (see .env.example for every name)"
        )
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{variable(field)}: {error['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
