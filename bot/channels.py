"""The client channels a configuration turns on, built from the settings."""

from __future__ import annotations

from bot.settings import Settings
from telephony.channels.smsru import SmsRuChannel


def smsru_channel(settings: Settings) -> SmsRuChannel | None:
    """SMS through SMS.ru when `TRUBKA_SMSRU_API_ID` is set, else None."""
    if settings.smsru_api_id is None or not settings.smsru_api_id.get_secret_value():
        return None
    return SmsRuChannel(
        settings.smsru_url,
        settings.smsru_api_id.get_secret_value(),
        sender=settings.sms_sender,
        test=settings.smsru_test,
        timeout=settings.smsru_timeout,
    )
