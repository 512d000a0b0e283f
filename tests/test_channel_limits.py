"""What must not happen by accident (telephony.channels.limits), on both databases: opt-out,
quiet hours, the per-client daily cap, the bot's daily SMS budget, no SMS to a landline. Each
refusal is a dialog line (what a manager reads) and a labelled counter in the metrics."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlmodel import col, select

from storage.channel_models import ChannelDelivery
from storage.db import Database
from storage.models import Client, DialogMessage
from telephony.channels.base import (
    Channel,
    ChannelKind,
    ChannelRules,
    IncomingMessage,
    OutgoingMessage,
    SendResult,
    within_window,
)
from telephony.channels.limits import Limits
from telephony.channels.routing import Ask
from telephony.channels.service import ChannelMetrics, ClientChannels, Sent
from telephony.clients import client_by_identity, create_client, set_variables
from telephony.infra.clock import FakeClock

MOSCOW = ZoneInfo("Europe/Moscow")
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=MOSCOW)
HELLO = Ask(text="Мы пропустили ваш звонок, перезвоним")


class Unused:
    """Routing needs to know a channel is configured; these tests never reach a send."""

    def __init__(self, kind: ChannelKind) -> None:
        self.kind = kind
        self.rules = ChannelRules(can_reply=kind != ChannelKind.SMS, costs_money=True)

    def free_text_allowed(self, last_incoming_at: datetime | None, now: datetime) -> bool:
        return within_window(self.rules, last_incoming_at, now)

    async def send(self, message: OutgoingMessage) -> SendResult:
        raise AssertionError("not sent in these tests")

    async def close(self) -> None:
        return None


def service(db: Database, clock: FakeClock, **limits: object) -> ClientChannels:
    channels: dict[str, Channel] = {
        ChannelKind.SMS: Unused(ChannelKind.SMS),
        ChannelKind.WHATSAPP: Unused(ChannelKind.WHATSAPP),
    }
    return ClientChannels(
        db,
        channels,
        Limits(zone=MOSCOW, **limits),  # type: ignore[arg-type]
        clock=clock,
        metrics=ChannelMetrics(CollectorRegistry()),
    )


async def new_client(db: Database, phone: str = "79004443322") -> int:
    async with db.session() as session:
        client = await create_client(session, phone=phone)
    assert client.id is not None
    return client.id


async def send(channels: ClientChannels, client_id: int, ask: Ask = HELLO, **flags: bool) -> Sent:
    async with channels.db.session() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return await channels.send(session, client, ask, origin="пропущенный", **flags)


async def dialog(db: Database, client_id: int) -> list[str]:
    async with db.session() as session:
        rows = await session.exec(
            select(DialogMessage.text)
            .where(DialogMessage.client_id == client_id)
            .order_by(col(DialogMessage.id))
        )
        return list(rows.all())


async def deliveries(db: Database) -> list[ChannelDelivery]:
    async with db.session() as session:
        rows = await session.exec(select(ChannelDelivery).order_by(col(ChannelDelivery.id)))
        return list(rows.all())


def refusals(channels: ClientChannels, channel: str, reason: str) -> float:
    value = channels.metrics.refusals.labels(channel, reason)._value.get()
    return float(value)


async def test_stop_in_whatsapp_opts_the_client_out_of_everything_but_transactional(
    any_db: Database,
) -> None:
    clock = FakeClock(NOON)
    channels = service(any_db, clock)
    await channels.messages_received(
        [IncomingMessage(ChannelKind.WHATSAPP, "79004443322", "wamid.1", "СТОП", clock.now())]
    )
    async with any_db.session() as session:
        client = await client_by_identity(session, "whatsapp", "79004443322")
    assert client is not None and client.id is not None
    sent = await send(channels, client.id)
    assert sent.reason == "opt_out" and not sent.ok
    assert await dialog(any_db, client.id) == [
        "СТОП",
        "🚫 Клиент написал «СТОП»: рассылки и сценарии ему больше не пишут",
        "Сообщение не отправлено: клиент отказался от сообщений (СТОП)",
    ]
    assert await deliveries(any_db) == []
    assert refusals(channels, "none", "opt_out") == 1
    # A message about the client's own request still goes (the rule says transactional).
    assert (await send(channels, client.id, transactional=True)).ok
    assert [row.kind for row in await deliveries(any_db)] == ["whatsapp"]


async def test_the_opt_out_variable_stops_messages_too(any_db: Database) -> None:
    channels = service(any_db, FakeClock(NOON))
    client_id = await new_client(any_db)
    async with any_db.session() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await set_variables(session, client, {"opt_out": "да"})
    assert (await send(channels, client_id)).reason == "opt_out"
    async with any_db.session() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await set_variables(session, client, {"opt_out": "нет"})
    assert (await send(channels, client_id)).ok


async def test_quiet_hours_defer_sms_to_the_morning_unless_urgent(any_db: Database) -> None:
    night = datetime(2026, 12, 4, 23, 30, tzinfo=MOSCOW)
    channels = service(any_db, FakeClock(night), quiet=(time(21), time(9)))
    client_id = await new_client(any_db)
    sent = await send(channels, client_id)
    assert sent.ok and sent.kind == "sms"
    assert sent.due == datetime(2026, 12, 5, 9, 0, tzinfo=MOSCOW)
    urgent = await send(channels, client_id, urgent=True)
    assert urgent.due == night
    rows = await deliveries(any_db)
    assert [row.next_attempt_at for row in rows] == [
        datetime(2026, 12, 5, 9, 0, tzinfo=MOSCOW),
        night,
    ]
    assert all(row.status == "pending" for row in rows)  # deferred, not dropped
    assert (await dialog(any_db, client_id))[0] == HELLO.text


async def test_the_per_client_daily_cap_refuses_and_resets_the_next_day(any_db: Database) -> None:
    clock = FakeClock(NOON)
    channels = service(any_db, clock, client_daily=2)
    client_id = await new_client(any_db)
    other_id = await new_client(any_db, "79161112233")
    outcomes = [await send(channels, client_id) for _ in range(3)]
    assert [o.ok for o in outcomes] == [True, True, False]
    assert outcomes[2].refusal == "SMS не отправлено: лимит сообщений клиенту в день (2) исчерпан"
    assert (await dialog(any_db, client_id))[-1] == outcomes[2].refusal
    assert (await send(channels, other_id)).ok  # someone else's cap is their own
    assert refusals(channels, "sms", "client_cap") == 1
    clock.advance(24 * 3600)
    assert (await send(channels, client_id)).ok
    assert len(await deliveries(any_db)) == 4


async def test_the_daily_sms_budget_holds_across_a_restart(any_db: Database) -> None:
    """A scenario loop must not send 1,000 SMS: the bot's daily budget is a stored counter, so
    a new process (a restart, another replica) counts on from where the last one stopped."""
    clock = FakeClock(NOON)
    first = service(any_db, clock, sms_daily=3, client_daily=0)
    clients = [await new_client(any_db, f"7916111223{n}") for n in range(5)]
    assert [(await send(first, c)).ok for c in clients[:2]] == [True, True]
    restarted = service(any_db, clock, sms_daily=3, client_daily=0)
    outcomes = [await send(restarted, c) for c in clients[2:]]
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[1].refusal == "SMS не отправлено: дневной лимит SMS бота (3) исчерпан"
    assert refusals(restarted, "sms", "sms_budget") == 2
    assert len(await deliveries(any_db)) == 3


async def test_a_landline_gets_no_sms(any_db: Database) -> None:
    channels = service(any_db, FakeClock(NOON))
    client_id = await new_client(any_db, "74951234567")
    sent = await send(channels, client_id, Ask(text="Привет", via=ChannelKind.SMS))
    assert sent.reason == "not_mobile"
    assert (await dialog(any_db, client_id)) == [
        "SMS не отправлено: номер не мобильный, SMS на него не отправить"
    ]
    assert refusals(channels, "sms", "not_mobile") == 1
