"""MegaFon virtual PBX: its pushes (`webhook`) and its commands (`api`)."""

from telephony.providers.base import InvalidPayload, PbxError
from telephony.providers.megafon.api import MegafonClient, PbxUser
from telephony.providers.megafon.webhook import (
    EVENT_TYPES,
    PROVIDER,
    STATUSES,
    Push,
    canonical_status,
    dedup_key,
    parse_call_push,
    parse_push,
    parse_start,
)

__all__ = [
    "EVENT_TYPES",
    "PROVIDER",
    "STATUSES",
    "InvalidPayload",
    "MegafonClient",
    "PbxError",
    "PbxUser",
    "Push",
    "canonical_status",
    "dedup_key",
    "parse_call_push",
    "parse_push",
    "parse_start",
]
