"""The scenario engine: a matched rule becomes a stored job; the scheduler runs due jobs.

Why every matched rule is a job (not only waiting ones): the trigger's observer returns at once
(the call inbox and the Telegram handler are not held up by a PBX request), and a rule whose
process stops mid-way is run again after the restart. A job runs its actions in order; a `wait`
stores the job again, due later, at the next action. When it comes due, the rule's `if` (and the
wait's own `if`) are checked again on fresh data: if one no longer holds, the job is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import Client
from storage.queue import Status
from storage.scenario_models import ScenarioJob
from storage.scenario_queries import JOBS, claim_due, next_due
from telephony.calls.apply import append_dialog
from telephony.calls.dialing import CallRequestError, megafon_call
from telephony.calls.pipeline import ScenarioJobs
from telephony.channels.base import ChannelKind, TemplateRef
from telephony.channels.routing import Ask
from telephony.channels.service import ClientChannels, DeliveryUpdate
from telephony.clients import set_variables
from telephony.events import CallObserver, CallUpdate, ClientMessage, LeadInfo, LeadMaker
from telephony.infra.clock import Clock
from telephony.infra.worker import Worker
from telephony.providers.megafon import MegafonClient, PbxError
from telephony.scenarios.actions import (
    TELEGRAM,
    ActionFailed,
    TelegramOutlet,
    queue_client_message,
    queue_topic_note,
    telegram_chat,
)
from telephony.scenarios.conditions import first_failing
from telephony.scenarios.context import Occurrence, build_context, marks
from telephony.scenarios.load import Scenarios
from telephony.scenarios.spec import Action, Rule, Wait
from telephony.scenarios.templates import TemplateFailure, render

log = logging.getLogger("trubka.scenarios")

# A rule's action may fire triggers (set_variable, create_lead) that start rules that fire …
MAX_DEPTH = 5
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("scenario_depth", default=0)
LEASE = timedelta(minutes=5)
IDLE_POLL = 30.0  # seconds between looks at the table when nobody wakes the scheduler
_SPACES = re.compile(r"\s+")


class ScenarioMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.runs = Counter(
            "trubka_scenario_jobs",
            "Scenario rule runs by rule and outcome (done, waiting, cancelled, failed)",
            ["rule", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "trubka_scenario_errors",
            "Scenario errors by rule and kind (template, action)",
            ["rule", "kind"],
            registry=registry,
        )


def _plain(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def matches(rule: Rule, occurrence: Occurrence) -> bool:
    trigger = rule.on
    if trigger.kind != occurrence.kind:
        return False
    if trigger.message is not None:
        match = trigger.message
        text = str(occurrence.fields.get("text", ""))
        if match.text is not None:
            return _plain(text) == _plain(match.text)
        if match.regex is not None:
            return match.regex.search(text) is not None
        if match.command is not None:
            return occurrence.fields.get("command") == match.command
        return True
    names: Sequence[str] = (
        trigger.call_event or trigger.call_status or trigger.lead or trigger.variable or []
    )
    return not names or occurrence.value in names


def parse_command(text: str) -> tuple[str | None, str]:
    """`/start promo@x` → ("start", "promo@x"); `/help@trubka_bot` → ("help", "")."""
    if not text.startswith("/"):
        return None, ""
    head, _, args = text[1:].partition(" ")
    return head.split("@", 1)[0].lower() or None, args.strip()


class ScenarioEngine:
    """The call pipeline's `scenarios` step, a MessageObserver and a LeadObserver; and the
    scheduler of its jobs."""

    def __init__(
        self,
        db: Database,
        scenarios: Scenarios,
        *,
        zone: ZoneInfo,
        clock: Clock,
        call_observer: CallObserver,
        pbx: MegafonClient | None,
        leads: LeadMaker | None = None,
        telegram: TelegramOutlet | None = None,
        metrics: ScenarioMetrics | None = None,
    ) -> None:
        self.db = db
        self.scenarios = scenarios
        self.zone = zone
        self.clock = clock
        self.call_observer = call_observer
        self.pbx = pbx
        self.leads = leads
        self.telegram = telegram
        self.metrics = metrics or ScenarioMetrics(CollectorRegistry())
        self._lock = asyncio.Lock()
        self.worker = Worker("scenario-scheduler", self._step, idle_poll=IDLE_POLL)
        self.gate: Callable[[], bool] = lambda: True
        # SMS / WhatsApp / Telegram by the routing order (set by bot.channels.setup_channels);
        # None: `send_message` goes to Telegram clients only, as before channels existed.
        self.channels: ClientChannels | None = None

    # --- triggers ------------------------------------------------------------------------

    async def decide(self, session: AsyncSession, update: CallUpdate) -> ScenarioJobs:
        """Store the jobs a call change triggers, in the transaction that applied it."""
        matching = self._matching(_call_occurrences(update))
        return ScenarioJobs(await self._store_all(session, matching) if matching else 0)

    async def committed(self, update: CallUpdate, result: ScenarioJobs) -> None:
        if result.stored:
            self.wake()

    async def message_received(self, message: ClientMessage) -> None:
        command, args = parse_command(message.text)
        fields = {"text": message.text, "command": command, "args": args}
        await self.fire([Occurrence("message", message.text, message.client_id, None, fields)])

    async def lead_created(self, lead: LeadInfo) -> None:
        fields: dict[str, Any] = {**lead.fields, "source": lead.source, "id": lead.lead_id}
        await self.fire([Occurrence("lead", lead.source, lead.client_id, lead.call_id, fields)])

    async def variables_set(
        self, client_id: int, changed: dict[str, str], call_id: int | None = None
    ) -> None:
        """Client variables were set by anyone: the `variable` trigger."""
        await self.fire(
            [
                Occurrence("variable", name, client_id, call_id, {"name": name, "value": value})
                for name, value in changed.items()
            ]
        )

    async def fire(self, occurrences: Sequence[Occurrence]) -> int:
        """Store a job for every rule whose trigger matches and whose `if` holds."""
        matching = self._matching(occurrences)
        if not matching:
            return 0
        async with self.db.session() as session:
            stored = await self._store_all(session, matching)
        if stored:
            self.wake()
        return stored

    def _matching(self, occurrences: Sequence[Occurrence]) -> list[tuple[Occurrence, list[Rule]]]:
        """The occurrences some rule's trigger matches, each with those rules."""
        depth = _depth.get()
        found: list[tuple[Occurrence, list[Rule]]] = []
        for occurrence in occurrences:
            rules = [
                rule
                for rule in self.scenarios.for_trigger(occurrence.kind)
                if matches(rule, occurrence)
            ]
            if not rules:
                continue
            if depth > MAX_DEPTH:
                log.warning(
                    "scenarios: %s %r not handled: rules trigger each other deeper than %d",
                    occurrence.kind,
                    occurrence.value,
                    MAX_DEPTH,
                )
                continue
            found.append((occurrence, rules))
        return found

    async def _store_all(
        self, session: AsyncSession, matching: list[tuple[Occurrence, list[Rule]]]
    ) -> int:
        depth = _depth.get()
        stored = 0
        for occurrence, rules in matching:
            stored += await self._store(session, occurrence, rules, depth)
        return stored

    async def _store(
        self, session: AsyncSession, occurrence: Occurrence, rules: list[Rule], depth: int
    ) -> int:
        now = self.clock.now()
        stored = 0
        mark = await marks(session, occurrence.client_id)
        context = await build_context(
            session,
            occurrence,
            now=now,
            zone=self.zone,
            duty_manager=self.scenarios.duty_manager,
            mark=mark,
            **self._channel_context(occurrence),
        )
        for rule in rules:
            failing = first_failing(rule.if_, context, now, self.scenarios.hours)
            if failing is not None:
                log.debug("scenarios: rule %r skipped: %s", rule.name, failing)
                continue
            payload = {"occurrence": occurrence.to_json(), "mark": mark, "depth": depth}
            session.add(
                ScenarioJob(
                    rule=rule.name,
                    client_id=occurrence.client_id,
                    call_id=occurrence.call_id,
                    payload=json.dumps(payload, ensure_ascii=False, default=str),
                    due_at=now,
                    created_at=now,
                )
            )
            stored += 1
        return stored

    # --- the scheduler -------------------------------------------------------------------

    def wake(self) -> None:
        self.worker.wake()

    async def run_due(self) -> int:
        """Run every job due now (and those they start); returns how many ran."""
        ran = 0
        async with self._lock:
            while True:
                jobs = await claim_due(self.db, self.clock.now(), lease=LEASE)
                if not jobs:
                    return ran
                for job in jobs:
                    await self._run(job)
                    ran += 1

    async def _step(self) -> float | None:
        if not self.gate():  # another process holds the "scenario-scheduler" lease
            return None
        await self.run_due()
        due = await next_due(self.db)
        return None if due is None else max(0.05, (due - self.clock.now()).total_seconds())

    async def run(self) -> None:
        """The background loop inside `trubka serve`."""
        await self.worker.run()

    async def stop(self, task: asyncio.Task[None], grace: float = 5.0) -> None:
        """End `run()` between two jobs; a job cut short is claimed again after its lease."""
        await self.worker.stop(grace, task)

    # --- running one job -----------------------------------------------------------------

    async def _run(self, job: ScenarioJob) -> None:
        payload = json.loads(job.payload)
        occurrence = Occurrence.from_json(payload["occurrence"])
        mark: dict[str, int] = payload.get("mark") or {}
        rule = self.scenarios.rule(job.rule)
        if rule is None or not rule.enabled:
            await self._finish(job, Status.CANCELLED, "the rule is no longer in the scenario file")
            return
        if job.step > 0:  # a wait has ended: does the rule still apply?
            reason = await self._still_applies(rule, job.step, occurrence, mark)
            if reason is not None:
                log.info(
                    "scenarios: rule %r for client %s cancelled: %s",
                    rule.name,
                    occurrence.client_id,
                    reason,
                )
                await self._finish(job, Status.CANCELLED, f"no longer holds: {reason}")
                return
        token = _depth.set(int(payload.get("depth", 0)) + 1)
        try:
            step = job.step
            while step < len(rule.do):
                action = rule.do[step]
                step += 1
                if action.wait is not None:
                    due = self._due(action.wait)
                    if due > self.clock.now():
                        await self._reschedule(job, step, due)
                        return
                    continue
                context = await self._context(occurrence, mark)
                await self._act(rule, step - 1, action, occurrence, context)
                if action.set_variable is None and step < len(rule.do):
                    # Done is done: a run cut short after this (the process died) goes on from
                    # the next action instead of sending or calling twice.
                    await self._progress(job, step)
            await self._finish(job, Status.DONE)
        except TemplateFailure as exc:
            await self._failed(job, rule, occurrence, "template", f"ошибка шаблона в {exc}")
        except ActionFailed as exc:
            await self._failed(job, rule, occurrence, "action", str(exc))
        except Exception as exc:  # one broken rule must not stop the scheduler
            log.exception("scenarios: rule %r failed", rule.name)
            await self._failed(job, rule, occurrence, "action", f"{exc.__class__.__name__}: {exc}")
        finally:
            _depth.reset(token)

    def _due(self, wait: Wait) -> datetime:
        due = self.clock.now() + (wait.for_ or timedelta())
        if wait.in_working_hours:
            due = self.scenarios.hours.next_open(due)
        return due

    async def _context(self, occurrence: Occurrence, mark: dict[str, int]) -> dict[str, Any]:
        async with self.db.session() as session:
            return await build_context(
                session,
                occurrence,
                now=self.clock.now(),
                zone=self.zone,
                duty_manager=self.scenarios.duty_manager,
                mark=mark,
                **self._channel_context(occurrence),
            )

    def _channel_context(self, occurrence: Occurrence) -> dict[str, Any]:
        """What the context knows of channels: which are configured, the client's deep link."""
        if self.channels is None:
            return {"configured": (TELEGRAM,) if self.telegram is not None else ()}
        link = (
            self.channels.telegram_link(occurrence.client_id)
            if occurrence.client_id is not None
            else None
        )
        return {"configured": self.channels.configured, "telegram_link": link or ""}

    async def _still_applies(
        self, rule: Rule, step: int, occurrence: Occurrence, mark: dict[str, int]
    ) -> str | None:
        context = await self._context(occurrence, mark)
        now, hours = self.clock.now(), self.scenarios.hours
        failing = first_failing(rule.if_, context, now, hours)
        wait = rule.do[step - 1].wait
        if failing is None and wait is not None:
            failing = first_failing(wait.if_, context, now, hours)
            if failing is not None:
                failing = f"do[{step - 1}].wait.{failing}"
        return failing

    async def _act(
        self,
        rule: Rule,
        index: int,
        action: Action,
        occurrence: Occurrence,
        context: dict[str, Any],
    ) -> None:
        kind = action.kind
        where = f"do[{index}].{kind}"
        client_id = occurrence.client_id
        if action.send_message is not None:
            message = action.send_message
            text = render(message.text, context, f"{where}.text").strip()
            if self.channels is None and message.via in (None, TELEGRAM):
                await self._send_message(rule, client_id, text)
            else:
                via = ChannelKind(message.via) if message.via else None
                await self._send_routed(
                    rule, client_id, Ask(text=text, via=via), message.urgent, message.transactional
                )
        elif action.send_template is not None:
            template = action.send_template
            params = tuple(
                render(param, context, f"{where}.params[{n}]")
                for n, param in enumerate(template.params)
            )
            fallback = (
                render(template.text, context, f"{where}.text").strip() if template.text else None
            )
            ask = Ask(
                text=fallback,
                template=TemplateRef(template.name, template.language, params),
                via=ChannelKind(template.via) if template.via else None,
            )
            await self._send_routed(rule, client_id, ask, template.urgent, template.transactional)
        elif action.notify_managers is not None:
            text = render(action.notify_managers.text, context, f"{where}.text")
            async with self.db.session() as session:
                client = await self._client(session, client_id)
                await queue_topic_note(session, self.telegram, client, text)
            if self.telegram is not None:
                self.telegram.wake()
        elif action.set_variable is not None:
            values = {
                name: render(value, context, f"{where}.{name}") if value is not None else None
                for name, value in action.set_variable.items()
            }
            async with self.db.session() as session:
                client = await self._client(session, client_id)
                changed = await set_variables(session, client, values)
            assert client_id is not None
            await self.variables_set(client_id, changed, occurrence.call_id)
        elif action.megafon_call is not None:
            phone = render(action.megafon_call.client_phone, context, f"{where}.client_phone")
            user = render(action.megafon_call.user, context, f"{where}.user")
            try:
                requested = await megafon_call(self.db, self.pbx, phone, user, self.call_observer)
            except (CallRequestError, PbxError) as exc:
                raise ActionFailed(f"{where}({phone!r}, {user!r}): {exc}") from None
            log.info(
                "scenarios: rule %r: megafon_call(%s, %s) → call %s",
                rule.name,
                requested.phone,
                user,
                requested.call_id,
            )
        elif action.create_lead is not None:
            if self.leads is None or client_id is None:
                raise ActionFailed(f"{where}: no lead store or no client")
            spec = action.create_lead
            fields: dict[str, str | bool | None] = {}
            for name in type(spec).model_fields:  # in the declared order
                if name not in spec.model_fields_set:
                    continue
                value = getattr(spec, name)
                fields[name] = (
                    render(value, context, f"{where}.{name}") if isinstance(value, str) else value
                )
            await self.leads.create_lead(client_id, fields, occurrence.call_id)

    async def _client(self, session: Any, client_id: int | None) -> Client:
        client = await session.get(Client, client_id) if client_id is not None else None
        if client is None:
            raise ActionFailed(f"client {client_id} no longer exists")
        assert isinstance(client, Client)
        return client

    async def _send_routed(
        self, rule: Rule, client_id: int | None, ask: Ask, urgent: bool, transactional: bool
    ) -> None:
        """Through the channels (routing, limits); a refusal is already in the dialog."""
        if self.channels is None:
            raise ActionFailed("no channel is configured for this message")
        async with self.db.session() as session:
            client = await self._client(session, client_id)
            await self.channels.send(
                session,
                client,
                ask,
                origin=rule.name,
                urgent=urgent,
                transactional=transactional,
            )
        self.channels.wake()

    async def delivery_status(self, update: DeliveryUpdate) -> None:
        """A channel reported a message's fate: the `delivery_status` trigger."""
        fields = {
            "channel": update.kind,
            "status": update.state,
            "code": update.code,
            "detail": update.detail,
            "delivery_id": update.delivery_id,
        }
        await self.fire(
            [Occurrence("delivery_status", update.state, update.client_id, None, fields)]
        )

    async def _send_message(self, rule: Rule, client_id: int | None, text: str) -> None:
        async with self.db.session() as session:
            client = await self._client(session, client_id)
            chat = await telegram_chat(session, client)
            if chat is None:
                log.info(
                    "scenarios: rule %r: client %s has no messenger; message not sent",
                    rule.name,
                    client_id,
                )
                return
            if self.telegram is None:
                log.warning("scenarios: rule %r: Telegram is not configured", rule.name)
                return
            await queue_client_message(session, self.telegram, client, chat, text, rule.name)
        self.telegram.wake()

    # --- job outcomes --------------------------------------------------------------------

    async def _failed(
        self, job: ScenarioJob, rule: Rule, occurrence: Occurrence, kind: str, reason: str
    ) -> None:
        """Reported three ways: the log, a metric, and a line in the client's dialog."""
        log.error("scenarios: rule %r failed (%s): %s", rule.name, kind, reason)
        self.metrics.errors.labels(rule.name, kind).inc()
        await self._finish(job, Status.FAILED, reason)
        if occurrence.client_id is None:
            return
        with contextlib.suppress(Exception):  # the client may be gone; the log has it
            async with self.db.session() as session:
                client = await session.get(Client, occurrence.client_id)
                if client is not None:
                    await append_dialog(
                        session,
                        client,
                        None,
                        "scenario_error",
                        f"⚠️ Сценарий «{rule.name}»: {reason}",
                    )

    async def _finish(self, job: ScenarioJob, status: Status, error: str | None = None) -> None:
        self.metrics.runs.labels(job.rule, status).inc()
        assert job.id is not None
        await JOBS.complete(
            self.db,
            job.id,
            job.claim_token,
            status=status,
            error=error[:2000] if error else None,
            finished_at=self.clock.now(),
        )

    async def _progress(self, job: ScenarioJob, step: int) -> None:
        assert job.id is not None
        await JOBS.update_claimed(self.db, job.id, job.claim_token, step=step)

    async def _reschedule(self, job: ScenarioJob, step: int, due: datetime) -> None:
        self.metrics.runs.labels(job.rule, "waiting").inc()
        assert job.id is not None
        await JOBS.release(self.db, job.id, job.claim_token, due=due, step=step)


def _call_occurrences(update: CallUpdate) -> list[Occurrence]:
    """A call change's triggers: its event and status lines, the variables it set."""
    client = update.client
    if client is None or client.id is None or update.call.internal:
        return []
    call_id = update.call.id
    occurrences = []
    for line in update.dialog:
        if line.kind in ("call_event", "call_status"):
            value = line.text.rpartition(" ")[2]
            occurrences.append(Occurrence(line.kind, value, client.id, call_id))
    for name, value in update.variables.items():
        occurrences.append(
            Occurrence("variable", name, client.id, call_id, {"name": name, "value": value})
        )
    return occurrences
