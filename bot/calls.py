"""Wiring the calls: the inbox (applies pushes through the call pipeline), the PBX clients,
their webhooks, the call API and the jobs webhooks queue (a Novofon recording's link)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from bot.background import end_task
from bot.leads import Leads
from bot.settings import Settings, secret
from bot.shell import Shell
from handlers.web import api, managers_api, megafon, novofon
from handlers.web.context import CALLS, CallsWeb
from telephony.calls.inbox import CallInbox
from telephony.leads.outbox import OutboxWorker
from telephony.providers.megafon import PROVIDER as MEGAFON
from telephony.providers.megafon import MegafonClient, parse_call_push
from telephony.providers.novofon import PROVIDER as NOVOFON
from telephony.providers.novofon import NovofonClient
from telephony.providers.novofon.events import RECORDING_JOB, RecordingFetcher, stored_pushes


def megafon_client(settings: Settings) -> MegafonClient | None:
    key = secret(settings.megafon_api_key)
    if not settings.megafon_url or not key:
        return None
    return MegafonClient(
        settings.megafon_url, key, api=settings.megafon_api, timeout=settings.megafon_timeout
    )


def novofon_client(settings: Settings) -> NovofonClient | None:
    secret_key = secret(settings.novofon_secret)
    if not settings.novofon_key or not secret_key:
        return None
    return NovofonClient(
        settings.novofon_url,
        settings.novofon_key,
        secret_key,
        zone=settings.zone,
        timeout=settings.novofon_timeout,
    )


def setup_calls(shell: Shell, leads: Leads) -> CallsWeb:
    """The inbox starts right after the database and stops before it (pushes stored but not
    applied are applied at the next start); `leads` lends the jobs queue its clock, retry
    policy and metrics (the jobs are rows of the same outbox)."""
    settings, database = shell.settings, shell.db
    inbox = CallInbox(
        database,
        shell.pipeline,
        {MEGAFON: parse_call_push, NOVOFON: stored_pushes(settings.zone)},
        stuck_after=settings.inbox_stuck_after,
    )
    pbx, novofon_api = megafon_client(settings), novofon_client(settings)
    jobs = OutboxWorker(
        database,
        {RECORDING_JOB: RecordingFetcher(novofon_api, inbox)} if novofon_api else {},
        clock=leads.worker.clock,
        policy=leads.worker.policy,
        metrics=leads.metrics,
    )
    calls = CallsWeb(
        db=database,
        metrics=shell.web.metrics,
        inbox=inbox,
        observer=shell.pipeline,
        pbx=pbx,
        megafon_crm_token=secret(settings.megafon_crm_token),
        novofon=novofon_api,
        novofon_secret=secret(settings.novofon_secret),
        novofon_route_to_responsible=settings.novofon_route_to_responsible,
        novofon_calltracking_token=secret(settings.novofon_calltracking_token),
        timezone=settings.zone,
        jobs=jobs,
    )
    shell.app[CALLS] = calls
    shell.web.health.add("inbox", inbox.health)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await inbox.start()
        jobs_task = asyncio.create_task(jobs.run(), name="jobs-worker") if jobs.sinks else None
        yield
        if jobs_task is not None:
            jobs.stop()
            await end_task(jobs_task, grace=10.0)
        await inbox.stop()
        if pbx is not None:
            await pbx.close()
        if novofon_api is not None:
            await novofon_api.close()

    shell.app.cleanup_ctx.append(lifetime)
    if shell.role.http:
        shell.app.add_routes(megafon.routes)
        shell.app.add_routes(novofon.routes)
        shell.app.add_routes(api.routes)
        shell.app.add_routes(managers_api.routes)
    return calls
