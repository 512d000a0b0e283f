"""Dynamic call tracking: a number pool shown to site visitors, leases with kept history, and
attribution of calls to the visit that held the dialled number."""

from telephony.tracking.attribution import TrackingAttributor, attribute_call
from telephony.tracking.config import TrackingConfig, check
from telephony.tracking.pool import sync_numbers
from telephony.tracking.visitors import PageView
from telephony.tracking.visits import Shown, UnknownVisit, VisitorIds, ping, record_page_view

__all__ = [
    "PageView",
    "Shown",
    "TrackingAttributor",
    "TrackingConfig",
    "UnknownVisit",
    "VisitorIds",
    "attribute_call",
    "check",
    "ping",
    "record_page_view",
    "sync_numbers",
]
