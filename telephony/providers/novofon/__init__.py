"""Novofon (API v1, the same as Zadarma's): request signing (`signing`), webhooks (`webhook`), the
API client (`api`), NOTIFY_* applied to calls (`events`) and its own call tracking (`tracking`)."""

from telephony.infra.phpquery import http_build_query
from telephony.providers.novofon.api import NovofonClient, NovofonError, PbxCallStat
from telephony.providers.novofon.signing import request_query, sign_request
from telephony.providers.novofon.webhook import (
    DEFAULT_URL,
    EVENTS,
    PROVIDER,
    SIGNED_FIELDS,
    Notification,
    dedup_key,
    disposition_status,
    parse_call_start,
    parse_notification,
    verify_webhook,
    webhook_signature,
)

__all__ = [
    "DEFAULT_URL",
    "EVENTS",
    "PROVIDER",
    "SIGNED_FIELDS",
    "Notification",
    "NovofonClient",
    "NovofonError",
    "PbxCallStat",
    "dedup_key",
    "disposition_status",
    "http_build_query",
    "parse_call_start",
    "parse_notification",
    "request_query",
    "sign_request",
    "verify_webhook",
    "webhook_signature",
]
