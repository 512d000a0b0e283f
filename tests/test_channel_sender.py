"""The channel sender against the fake SMS.ru over HTTP, on both databases: a provider's "try
later" is retried, a refusal for good is set aside with SMS.ru's reason in the dialog, a timeout
(the SMS may be out) is never resent, and the pair limit spaces messages to one person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlmodel import col, select

from storage.channel_models import ChannelDelivery
from storage.db import Database
from storage.models import Client, DialogMessage
from telephony.channels.base import Channel
from telephony.channels.limits import Limits
from telephony.channels.routing import Ask
from telephony.channels.sender import ChannelSender
from telephony.channels.service import ChannelMetrics, ClientChannels
from telephony.channels.smsru import SmsRuChannel
from telephony.clients import create_client
from telephony.infra.clock import FakeClock
from telephony.infra.ratelimit import TokenBuckets
from tests.fakes.smsru import FakeSmsRu

MOSCOW = ZoneInfo("Europe/Moscow")
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=MOSCOW)


@pytest.fixture
async def fake_smsru() -> AsyncIterator[FakeSmsRu]:
    fake = FakeSmsRu(timeout_seconds=1.5)
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def parts(
    any_db: Database, fake_smsru: FakeSmsRu
) -> AsyncIterator[tuple[ClientChannels, ChannelSender, FakeClock]]:
    clock = FakeClock(NOON)
    sms = SmsRuChannel(fake_smsru.url, fake_smsru.api_id, timeout=1.0)
    channels: dict[str, Channel] = {"sms": sms}
    service = ClientChannels(
        any_db,
        channels,
        Limits(zone=MOSCOW, client_daily=0),
        clock=clock,
        metrics=ChannelMetrics(CollectorRegistry()),
    )
    sender = ChannelSender(
        any_db,
        channels,
        service,
        clock=clock,
        throughput={"sms": TokenBuckets(100, 100)},
        pair={"sms": TokenBuckets(1, 5)},
    )
    yield service, sender, clock
    await sms.close()


async def queue(service: ClientChannels, phone: str, text: str) -> int:
    async with service.db.session() as session:
        client = await create_client(session, phone=phone)
        sent = await service.send(session, client, Ask(text=text), origin="тест")
        assert sent.ok, sent
    assert client.id is not None
    return client.id


async def rows(db: Database) -> list[ChannelDelivery]:
    async with db.session() as session:
        result = await session.exec(select(ChannelDelivery).order_by(col(ChannelDelivery.id)))
        return list(result.all())


async def dialog(db: Database, client_id: int) -> list[str]:
    async with db.session() as session:
        result = await session.exec(
            select(DialogMessage.text)
            .where(DialogMessage.client_id == client_id)
            .order_by(col(DialogMessage.id))
        )
        return list(result.all())


async def test_try_later_is_retried_and_a_refusal_for_good_is_set_aside(
    parts: tuple[ClientChannels, ChannelSender, FakeClock], fake_smsru: FakeSmsRu
) -> None:
    service, sender, clock = parts
    first = await queue(service, "79161110001", "Первое")
    fake_smsru.fail_next("220")  # SMS.ru: service temporarily unavailable
    assert await sender.run_once() == 1
    [row] = await rows(service.db)
    assert (row.status, row.attempts, row.attempted_at) == ("pending", 1, None)
    assert fake_smsru.sent == []
    clock.advance(600)
    assert await sender.run_once() == 1
    [row] = await rows(service.db)
    assert (row.status, row.state) == ("sent", "sent")
    assert row.provider_message_id == fake_smsru.sent[0].sms_id

    fake_smsru.balance = 0  # out of money: SMS.ru's 201, final for this delivery
    second = await queue(service, "79161110002", "Второе")
    await sender.run_once()
    assert [(r.status, r.state) for r in await rows(service.db)][1] == ("failed", "failed")
    assert (await dialog(service.db, second))[-1] == (
        "SMS не отправлено: SMS.ru refused: Не хватает средств на лицевом счету (out of money)"
        " (код 201)"
    )
    assert await dialog(service.db, first) == ["Первое"]


async def test_a_timeout_is_not_resent(
    parts: tuple[ClientChannels, ChannelSender, FakeClock], fake_smsru: FakeSmsRu
) -> None:
    service, sender, clock = parts
    client_id = await queue(service, "79161110003", "Может уйти")
    fake_smsru.fail_next("timeout")  # SMS.ru sends it, the answer comes after we gave up
    await sender.run_once()
    [row] = await rows(service.db)
    assert (row.status, row.state) == ("failed", "uncertain")
    assert len(fake_smsru.sent) == 1  # it did go out: sending again would be a second SMS
    clock.advance(3600)
    assert await sender.run_once() == 0
    assert len(fake_smsru.sent) == 1
    assert (await dialog(service.db, client_id))[-1].startswith("SMS: отправка прервалась")


async def test_the_pair_limit_spaces_messages_to_one_person(
    parts: tuple[ClientChannels, ChannelSender, FakeClock], fake_smsru: FakeSmsRu
) -> None:
    service, sender, _ = parts
    sender.pair = {"sms": TokenBuckets(0.001, 1)}  # one SMS to a person, then a long pause
    client_id = await queue(service, "79161110004", "Раз")
    async with service.db.session() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        await service.send(session, client, Ask(text="Два"), origin="тест")
    await sender.run_once()
    statuses = [(r.text, r.status, r.attempts) for r in await rows(service.db)]
    # The second waits for the pair budget; waiting is not a try.
    assert statuses == [("Раз", "sent", 1), ("Два", "pending", 0)]
    assert [s.text for s in fake_smsru.sent] == ["Раз"]
