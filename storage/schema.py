"""The whole schema: every table module, so `SQLModel.metadata` holds every table (migrations'
autogenerate check, tests that empty the tables)."""

from storage import (
    access_models,
    channel_models,
    leads_models,
    leases,
    models,
    report_models,
    scenario_models,
    telegram_models,
    tracking_models,
    widget_models,
)
from storage.base import METADATA

TABLE_MODULES = (
    models,
    access_models,
    channel_models,
    leads_models,
    leases,
    report_models,
    scenario_models,
    telegram_models,
    tracking_models,
    widget_models,
)

__all__ = ["METADATA", "TABLE_MODULES"]
