"""Wiring access: the bootstrap token from the settings, the app's clock."""

from __future__ import annotations

from bot.settings import Settings
from handlers.web.access import AccessService
from storage.db import Database
from telephony.infra.clock import Clock, SystemClock


def access_service(settings: Settings, db: Database, clock: Clock | None = None) -> AccessService:
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    return AccessService(db=db, bootstrap=token or None, clock=clock or SystemClock())
