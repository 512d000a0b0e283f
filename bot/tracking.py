"""Wiring call tracking into the app: its `[tracking]` settings, routes, pipeline steps, numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from bot.config import load_file_config
from bot.settings import ConfigurationError, Settings
from bot.shell import Shell
from handlers.web import tracking as tracking_web
from handlers.web import widgets as widgets_web
from storage.db import Database
from telephony.infra.clock import SystemClock
from telephony.leads.service import FormLead, LeadService
from telephony.tracking import TrackingAttributor, TrackingConfig, check, sync_numbers
from telephony.tracking.callback import (
    CallbackCalls,
    CallbackDesk,
    CallbackMetrics,
    OpenHours,
    VisitLead,
)
from telephony.tracking.chat_links import link_key
from telephony.tracking.chat_visits import VisitChats
from telephony.tracking.config import ConfigProblem
from telephony.tracking.guard import RequestBudget
from telephony.tracking.script import render_tracker, render_widget
from telephony.tracking.short_calls import ShortCallFlagger


def load_tracking(settings: Settings) -> TrackingConfig:
    """`[tracking]` of trubka.toml; ConfigurationError names the wrong key."""
    config = load_file_config(settings).section("tracking", TrackingConfig)
    try:
        check(config)
    except ConfigProblem as exc:
        raise ConfigurationError(str(exc)) from None
    return config


def setup_tracking(shell: Shell, config: TrackingConfig, widgets: Widgets | None = None) -> None:
    """The tracker script and its routes; when on, the pipeline's `tracking` and `fraud` steps
    and the pool's numbers synced at start."""
    app, db = shell.app, shell.db
    script = render_tracker(config, shell.settings.public_url).encode("utf-8")
    app[tracking_web.TRACKING] = tracking_web.TrackingWeb(
        config=config, script=script, budget=RequestBudget(config.limits)
    )
    if shell.role.http:
        app.middlewares.append(tracking_web.cors)
        app.add_routes(tracking_web.routes)
        app.add_routes(widgets_web.routes)
    if not config.enabled:
        return
    shell.pipeline.steps.tracking = TrackingAttributor(config)
    shell.pipeline.steps.fraud = ShortCallFlagger(config)
    if config.widgets.enabled and widgets is not None:
        # A placed call joins its callback's request and lead before the leads decide on it.
        clock = shell.clock or SystemClock()
        shell.pipeline.steps.callback = CallbackCalls(clock)
        desk = CallbackDesk(
            db,
            config,
            WidgetLeads(widgets.leads),
            widgets.hours,
            zone=shell.settings.zone,
            clock=clock,
            metrics=CallbackMetrics(shell.web.metrics.registry),
        )
        widget_script = render_widget(config, shell.settings.public_url).encode("utf-8")
        settings = shell.settings
        token = settings.telegram_token.get_secret_value() if settings.telegram_token else None
        app[widgets_web.WIDGETS] = widgets_web.Widgets(
            desk=desk, script=widget_script, link_key=link_key(token) if token else None
        )

    async def numbers(_app: web.Application) -> AsyncIterator[None]:
        async with db.session() as session:
            await sync_numbers(session, config)
        yield

    app.cleanup_ctx.append(numbers)


@dataclass(frozen=True)
class Widgets:
    """What the site widgets need from the other rooms."""

    leads: LeadService
    hours: OpenHours


class WidgetLeads:
    """A visit's lead through the leads room: stored, queued to Roistat with the visit's tags
    and ids, told to the scenarios (`lead: callback`, `lead: chat`)."""

    def __init__(self, service: LeadService) -> None:
        self.service = service

    async def visit_lead(self, lead: VisitLead) -> tuple[int, int | None]:
        visit = lead.visit
        created = await self.service.create_form_lead(
            FormLead(
                phone=lead.phone,
                name=lead.name,
                is_need_callback=lead.source == "callback" or None,
                roistat_visit=visit.roistat_visit,
                metrika_client_id=visit.metrika_client_id,
                yclid=visit.yclid,
                utm_source=visit.utm_source,
                utm_medium=visit.utm_medium,
                utm_campaign=visit.utm_campaign,
                utm_content=visit.utm_content,
                utm_term=visit.utm_term,
                landing_url=visit.landing_url,
                referrer=visit.referrer,
                external_key=lead.external_key,
            ),
            source=lead.source,
            client_id=lead.client_id,
        )
        return created.lead_id, created.client_id


def visit_chats(
    settings: Settings, config: TrackingConfig, db: Database, leads: LeadService
) -> VisitChats | None:
    """`/start v<token>` of the messenger links: on with the widgets and a Telegram bot."""
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else None
    if not (config.enabled and config.widgets.enabled and token):
        return None
    return VisitChats(db, WidgetLeads(leads), link_key(token))
