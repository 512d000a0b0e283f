"""The client channels a configuration turns on (each factory returns None when it is off)."""

from __future__ import annotations

from bot.settings import Settings
from handlers.web.whatsapp import WhatsAppWebhookConfig
from telephony.channels.smsru import SmsRuChannel
from telephony.channels.whatsapp import WhatsAppChannel


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


def whatsapp_channel(settings: Settings) -> WhatsAppChannel | None:
    """The WhatsApp channel when its token and phone number id are set (serve refuses a half
    configuration before this runs: bot/integrations.py)."""
    if settings.whatsapp_token is None or not settings.whatsapp_phone_number_id:
        return None
    return WhatsAppChannel(
        settings.whatsapp_url,
        settings.whatsapp_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
    )


def whatsapp_webhook_config(settings: Settings) -> WhatsAppWebhookConfig | None:
    """What `/whatsapp_webhook` checks (put it at `handlers.web.whatsapp.WHATSAPP_WEBHOOK`)."""
    secret, verify = settings.whatsapp_app_secret, settings.whatsapp_verify_token
    if secret is None or verify is None:
        return None
    app_secret, verify_token = secret.get_secret_value(), verify.get_secret_value()
    if not app_secret or not verify_token:
        return None
    return WhatsAppWebhookConfig(app_secret=app_secret, verify_token=verify_token)
