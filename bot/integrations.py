"""Which integrations a configuration turns on, and which are only half configured.

`serve` refuses a half-configured integration (a MegaFon URL without its key, a Metrika token
without its counter, …) naming the missing setting, and logs one on/off line per integration,
so an operator never has to guess why nothing reaches the PBX or Metrika.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from bot.settings import ConfigurationError, Settings, secret, variable


@dataclass(frozen=True)
class Integration:
    name: str
    # Settings that must be set together: any one set without the others is refused.
    together: tuple[str, ...]
    # Settings that are only meaningful with the integration on (set alone = refused).
    needs_it: tuple[str, ...] = ()


INTEGRATIONS = (
    Integration("MegaFon PBX commands", ("megafon_url", "megafon_api_key")),
    Integration("MegaFon webhooks", ("megafon_crm_token",)),
    Integration("Novofon API", ("novofon_key", "novofon_secret")),
    Integration(
        "Telegram",
        ("telegram_token",),
        needs_it=(
            "telegram_managers_chat_id",
            "telegram_webhook_url",
            "telegram_webhook_secret",
        ),
    ),
    Integration("Telegram webhook", ("telegram_webhook_url", "telegram_webhook_secret")),
    Integration("Roistat leads", ("roistat_key",)),
    Integration("Roistat call tracking", ("roistat_api_key", "roistat_project")),
    Integration("Yandex Metrika", ("metrika_token", "metrika_counter_id")),
    Integration("SMS.ru", ("smsru_api_id",), needs_it=("sms_sender",)),
    Integration(
        "WhatsApp",
        (
            "whatsapp_token",
            "whatsapp_phone_number_id",
            "whatsapp_app_secret",
            "whatsapp_verify_token",
        ),
    ),
    Integration("API token", ("api_token",)),
)


def _is_set(settings: Settings, name: str) -> bool:
    value = getattr(settings, name)
    if isinstance(value, SecretStr):
        value = secret(value)
    return value not in (None, "", [])


def problems(settings: Settings) -> list[str]:
    """One message per missing setting, naming it and what made it necessary."""
    found: list[str] = []
    for integration in INTEGRATIONS:
        given = [name for name in integration.together if _is_set(settings, name)]
        if given:
            for missing in integration.together:
                if missing not in given:
                    found.append(
                        f"{variable(missing)}: required when {variable(given[0])} is set "
                        f"({integration.name})"
                    )
        elif integration.needs_it:
            for name in integration.needs_it:
                if _is_set(settings, name):
                    found.append(
                        f"{variable(integration.together[0])}: required when {variable(name)} "
                        f"is set ({integration.name})"
                    )
    return found


def check(settings: Settings) -> None:
    if found := problems(settings):
        raise ConfigurationError("; ".join(found))


def notes(settings: Settings) -> list[str]:
    """Settings that are accepted but do nothing (kept so old configurations still start)."""
    found = []
    if _is_set(settings, "redis_url"):
        found.append(
            "TRUBKA_REDIS_URL is set but not used: Trubka keeps no bot state in memory, and "
            "leases and queues live in the database, so several processes need no Redis"
        )
    return found


def summary(settings: Settings) -> list[str]:
    """`name: on` / `name: off (TRUBKA_X unset)` per integration, for the startup log."""
    lines = []
    for integration in INTEGRATIONS:
        if all(_is_set(settings, name) for name in integration.together):
            lines.append(f"{integration.name}: on")
        else:
            unset = ", ".join(variable(name) for name in integration.together)
            lines.append(f"{integration.name}: off ({unset} unset)")
    return lines
