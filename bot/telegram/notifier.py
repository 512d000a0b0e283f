"""The dialog notifier: every stored call change reaches the client's topic as a queued send,
and a ringing or missed call reaches the right managers' private chats (private alerts)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.telegram.policy import NEW_TOPIC_CALLS
from bot.telegram.render import (
    Notification,
    People,
    is_missed,
    render_escalation,
    render_event,
    render_requested,
    render_ringing,
    render_status,
)
from handlers.telegram.cards import client_source, client_sources
from storage.among import among_param
from storage.db import Database
from storage.manager_queries import manager_by_login, managers_by_login
from storage.models import Call, Client, DialogMessage, Manager
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import (
    ALERT,
    ESCALATE,
    LIVE,
    MESSAGE,
    Outgoing,
    enqueue,
    enqueue_many,
)
from telephony.calls.lanes import replayed
from telephony.calls.pipeline import NotesQueued
from telephony.events import CallUpdate
from telephony.infra.clock import SYSTEM_CLOCK, Clock

EVENT_PREFIX = "_call_event "
CATCH_UP_MARGIN = timedelta(minutes=10)
CATCH_UP_LIMIT = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertRules:
    """Private alerts: a ringing call from a known client to their responsible manager, from
    an unknown caller to the on-duty managers; a missed call nobody took within
    `escalate_after` (0 = never) to both, with «Беру»."""

    private: bool = True
    escalate_after: timedelta = timedelta(minutes=10)


class TopicNotifier:
    """The call pipeline's `notes` step: stores the sends of a call's change (with the change,
    when the call inbox applies it), then wakes the queue, so a failed or postponed send is
    retried from the table."""

    def __init__(
        self,
        db: Database,
        managers_chat_id: int | None,
        wake: Callable[..., None],
        rules: AlertRules | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.clock = clock
        self.chat_id = managers_chat_id
        self._wake = wake
        self.rules = rules or AlertRules()

    async def decide(self, session: AsyncSession, update: CallUpdate) -> NotesQueued:
        """Store the call's sends in the transaction that applied its push: the dialog line
        and its send commit together (and no transaction of our own per push)."""
        return await self._sends(session, update)

    async def committed(self, update: CallUpdate, result: NotesQueued) -> None:
        if result.sends:
            # A ringing or missed call's sender pass happens at once, even behind a backlog.
            self._wake(urgent=bool(result.alerts), alerts=result.alerts)

    async def _sends(self, session: AsyncSession, update: CallUpdate) -> NotesQueued:
        client = update.client
        if client is None or client.id is None or update.call.internal:
            return NotesQueued()
        return await self._enqueue(
            session,
            update.call,
            client,
            update.dialog,
            requested=update.trigger == "requested",
            known=not update.client_created,
            replay=update.replayed,
        )

    async def catch_up(self) -> int:
        """Queue call lines stored while no send was queued for them (the process stopped
        between the call's commit and ours). Only lines newer than the oldest send of the last
        run are looked at, so turning Telegram on does not replay the whole history."""
        async with self.db.session() as session:
            latest = (
                await session.exec(
                    select(TelegramDelivery.created_at)
                    .where(col(TelegramDelivery.dialog_message_id).is_not(None))
                    .order_by(col(TelegramDelivery.id).desc())
                    .limit(1)
                )
            ).first()
            if latest is None:
                return 0
            queued = select(TelegramDelivery.dialog_message_id).where(
                col(TelegramDelivery.dialog_message_id).is_not(None)
            )
            lines = list(
                (
                    await session.exec(
                        select(DialogMessage)
                        .where(
                            col(DialogMessage.kind).in_(("call_event", "call_status")),
                            col(DialogMessage.created_at) >= latest - CATCH_UP_MARGIN,
                            col(DialogMessage.id).not_in(queued),
                            col(DialogMessage.call_id).is_not(None),
                        )
                        .order_by(col(DialogMessage.id))
                        .limit(CATCH_UP_LIMIT)
                    )
                ).all()
            )
            added = 0
            for line in lines:
                call = await session.get(Call, line.call_id)
                client = await session.get(Client, line.client_id)
                if call is not None and client is not None and not call.internal:
                    notes = await self._enqueue(session, call, client, [line], alerts=False)
                    added += notes.sends
        if added:
            log.info("queued %d call notes stored while no send was queued", added)
            self._wake()
        return added

    async def _enqueue(
        self,
        session: AsyncSession,
        stale_call: Call,
        stale_client: Client,
        dialog: list[DialogMessage],
        *,
        requested: bool = False,
        known: bool = True,
        alerts: bool = True,
        replay: bool = False,
    ) -> NotesQueued:
        call = await session.get(Call, stale_call.id) or stale_call
        client = await session.get(Client, stale_client.id) or stale_client
        people = await _people(session, call, client.responsible_manager_id)
        plan = _Plan(call, client, people, dialog, requested, known, replay)
        sends = self._topic_sends(plan)
        if alerts and self._alerting(plan):
            on_duty = await _on_duty(session) if self._needs_on_duty(plan) else []
            source = await client_source(session, client) if plan.ringing else None
            sends += self._alerts(plan, on_duty, source)
        for outgoing in sends:
            enqueue(session, outgoing)
        return _queued(sends, plan)

    async def decide_many(
        self, session: AsyncSession, updates: Sequence[CallUpdate]
    ) -> list[NotesQueued]:
        """`decide` for a round of changes (each call once; the call and client as the update
        carries them, current): the managers, the on-duty list and the ringing clients'
        sources read once for the round, the sends stored in one multi-row INSERT."""
        plans: list[_Plan | None] = []
        for update in updates:
            client = update.client
            if client is None or client.id is None or update.call.internal:
                plans.append(None)
                continue
            plan = _Plan(
                update.call,
                client,
                People(None, None),
                update.dialog,
                requested=update.trigger == "requested",
                known=not update.client_created,
                replayed=update.replayed,
            )
            plans.append(plan)
        wanted = [plan for plan in plans if plan is not None]
        people = await _people_many(session, [(plan.call, plan.client) for plan in wanted])
        for plan, found in zip(wanted, people, strict=True):
            plan.people = found
        topic = [self._topic_sends(plan) for plan in wanted]
        alerting = [plan for plan in wanted if self._alerting(plan)]
        on_duty: list[Manager] = []
        if any(self._needs_on_duty(plan) for plan in alerting):
            on_duty = await _on_duty_once(session)
        ringing = [plan.client.id for plan in alerting if plan.ringing and plan.client.id]
        sources = await client_sources(session, ringing)
        counts: dict[int, NotesQueued] = {}
        outgoing: list[Outgoing] = []
        for plan, sends in zip(wanted, topic, strict=True):
            if self._alerting(plan):
                source = sources.get(plan.client.id or 0) if plan.ringing else None
                sends = sends + self._alerts(plan, on_duty, source)
            outgoing.extend(sends)
            counts[id(plan)] = _queued(sends, plan)
        await enqueue_many(session, outgoing)
        return [counts[id(plan)] if plan else NotesQueued() for plan in plans]

    def _topic_sends(self, plan: _Plan) -> list[Outgoing]:
        """The call's lines in the client's topic; marks the plan ringing or missed."""
        call, client, people = plan.call, plan.client, plan.people
        # Events are lines of the call's one live message; the outcome is a message of its own
        # (managers get notified, a missed call carries its call-back button). A ringing
        # inbound call and a missed one go first.
        sends: list[tuple[int | None, str, int, Notification]] = []
        if plan.requested:
            sends.append((None, "live", LIVE, render_requested(call, people)))
        # A replayed call (it ended long ago) rings nobody: its lines go in no alert lane and
        # its INCOMING makes no private alert, so a replay never holds back a call ringing
        # now. Its missed outcome still escalates: nobody has called that client back.
        news = not (plan.replayed or replayed(call, self.clock.now()))
        for line in plan.dialog:
            if line.kind == "call_event":
                event = line.text.partition(EVENT_PREFIX)[2] or "?"
                rings = news and event == "INCOMING"
                plan.ringing = plan.ringing or (rings and call.direction == "in")
                lane = ALERT if rings else LIVE
                sends.append((line.id, "live", lane, render_event(event, call, client, people)))
            elif line.kind == "call_status":
                plan.missed = plan.missed or is_missed(call)
                lane = ALERT if news and is_missed(call) else MESSAGE
                sends.append((line.id, "send", lane, render_status(call, client, people)))
        if self.chat_id is None:
            return []
        return [
            Outgoing(
                target="topic",
                chat_id=self.chat_id,
                client_id=client.id,
                dialog_message_id=dialog_id,
                call_id=call.id,
                method=method,
                lane=lane,
                text=note.text,
                reply_markup=_markup(note),
            )
            for dialog_id, method, lane, note in sends
        ]

    def _alerting(self, plan: _Plan) -> bool:
        return self.rules.private and (plan.ringing or plan.missed)

    def _needs_on_duty(self, plan: _Plan) -> bool:
        """Whether the plan's private alerts go to the on-duty managers (read from the table)."""
        if plan.ringing:
            responsible = plan.people.responsible
            return not (
                plan.known and responsible is not None and responsible.telegram_user_id is not None
            )
        return self.rules.escalate_after > timedelta(0)

    def _alerts(self, plan: _Plan, on_duty: list[Manager], source: str | None) -> list[Outgoing]:
        """The private alerts of a ringing or missed call (`on_duty`: read when needed)."""
        call, client, people = plan.call, plan.client, plan.people
        responsible = people.responsible
        sends: list[Outgoing] = []
        if plan.ringing:
            if self._needs_on_duty(plan):
                recipients = on_duty
            else:
                assert responsible is not None
                recipients = [responsible]
            note = render_ringing(call, client, source)
            for manager in recipients:
                assert manager.telegram_user_id is not None
                sends.append(_private(manager.telegram_user_id, call, client, ALERT, note))
        elif self.rules.escalate_after > timedelta(0):
            recipients = list(on_duty)
            if responsible is not None and responsible.telegram_user_id is not None:
                recipients = [responsible, *(m for m in on_duty if m.id != responsible.id)]
            note = render_escalation(call, client, people, self.rules.escalate_after)
            due = self.clock.now() + self.rules.escalate_after
            for manager in recipients:
                assert manager.telegram_user_id is not None
                outgoing = _private(manager.telegram_user_id, call, client, ALERT, note)
                sends.append(Outgoing(**{**outgoing.__dict__, "method": ESCALATE, "due_at": due}))
        return sends


def _queued(sends: Sequence[Outgoing], plan: _Plan) -> NotesQueued:
    """What the change queued; an alert in the topic of a client it created takes the topic
    and its card first (as the scheduler counts it, `policy.cost`), any other one send."""
    alerts: dict[int, int] = {}
    for outgoing in sends:
        if outgoing.lane == ALERT:
            new_topic = not plan.known and outgoing.target == "topic"
            fewest = 1 + (NEW_TOPIC_CALLS if new_topic else 0)
            alerts[outgoing.chat_id] = min(fewest, alerts.get(outgoing.chat_id, fewest))
    return NotesQueued(len(sends), alerts)


@dataclass
class _Plan:
    """One change's notes as they are worked out (ringing, missed: from its dialog lines)."""

    call: Call
    client: Client
    people: People
    dialog: list[DialogMessage]
    requested: bool = False
    known: bool = True
    replayed: bool = False  # the update is a replay (CallUpdate.replayed)
    ringing: bool = False
    missed: bool = False


def _markup(note: Notification) -> str | None:
    return note.keyboard.model_dump_json(exclude_none=True) if note.keyboard else None


def _private(chat_id: int, call: Call, client: Client, lane: int, note: Notification) -> Outgoing:
    return Outgoing(
        target="chat",
        chat_id=chat_id,
        client_id=client.id,
        call_id=call.id,
        lane=lane,
        text=note.text,
        reply_markup=_markup(note),
    )


async def _on_duty(session: AsyncSession) -> list[Manager]:
    return list((await session.exec(_ON_DUTY)).all())


async def _on_duty_once(session: AsyncSession) -> list[Manager]:
    """The on-duty managers, read once per transaction (a slice of the call inbox: the steps
    never change who is on duty, and the slice's pushes are applied before its steps)."""
    found: list[Manager] | None = session.info.get(_ON_DUTY_SEEN)
    if found is None:
        found = session.info[_ON_DUTY_SEEN] = await _on_duty(session)
    return found


_ON_DUTY_SEEN = "trubka.managers_on_duty"
# Built once: every push of a call asks (statement building costs more than the query).
_MANAGERS_BY_ID = select(Manager).where(among_param(col(Manager.id), "ids"))
_MANAGER_BY_EXT = select(Manager).where(col(Manager.pbx_ext) == bindparam("ext"))
_ON_DUTY = (
    select(Manager)
    .where(col(Manager.on_duty).is_(True), col(Manager.telegram_user_id).is_not(None))
    .order_by(col(Manager.id))
)


async def _people_many(
    session: AsyncSession, pairs: Sequence[tuple[Call, Client]]
) -> list[People]:
    """`_people` of several calls: the managers by login and the responsible ones read in one
    query each (those this transaction holds already are not asked again)."""
    logins = {call.manager_user or call.requested_user or "" for call, _ in pairs} - {""}
    by_login = await managers_by_login(session, logins)
    wanted = {c.responsible_manager_id for _, c in pairs if c.responsible_manager_id is not None}
    held = session.sync_session.identity_map
    responsible: dict[int, Manager] = {}
    for manager_id in wanted:
        known = held.get(identity_key(Manager, manager_id))
        if isinstance(known, Manager):
            responsible[manager_id] = known
    missing = sorted(manager_id for manager_id in wanted if manager_id not in responsible)
    if missing:
        rows = await session.exec(_MANAGERS_BY_ID, params={"ids": missing})
        responsible.update({row.id: row for row in rows.all() if row.id is not None})
    found: list[People] = []
    for call, client in pairs:
        login = call.manager_user or call.requested_user
        call_manager = by_login.get(login) if login else None
        if login and call_manager is None and call.manager_ext:
            by_ext = {"ext": call.manager_ext}
            call_manager = (await session.exec(_MANAGER_BY_EXT, params=by_ext)).first()
        chosen = client.responsible_manager_id
        found.append(People(call_manager, responsible.get(chosen) if chosen else None))
    return found


async def _people(session: AsyncSession, call: Call, responsible_id: int | None) -> People:
    call_manager = None
    login = call.manager_user or call.requested_user
    if login:
        call_manager = await manager_by_login(session, login)
        if call_manager is None and call.manager_ext:
            by_ext = {"ext": call.manager_ext}
            call_manager = (await session.exec(_MANAGER_BY_EXT, params=by_ext)).first()
    responsible = await session.get(Manager, responsible_id) if responsible_id else None
    return People(call_manager=call_manager, responsible=responsible)
