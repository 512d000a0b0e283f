"""SMS through SMS.ru: the channel against a fake SMS.ru over HTTP (sends, parts and money, test
mode, refusals that are permanent and failures that are not), the delivery-status callback edge
served by aiohttp (answers `100`, never a 5xx, fuzzed), the balance in /healthz, the settings."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels import smsru_channel
from bot.integrations import problems
from bot.settings import ConfigurationError, Settings, load_settings
from handlers.web import smsru as smsru_edge
from handlers.web.channel_inbound import CHANNEL_INBOUND
from handlers.web.errors import json_errors
from telephony.channels.base import (
    ChannelError,
    ChannelKind,
    DeliveryState,
    DeliveryStatus,
    IncomingMessage,
    OutgoingMessage,
    TemplateRef,
)
from telephony.channels.sms_parts import sms_parts
from telephony.channels.smsru import (
    InvalidCallback,
    SmsRuChannel,
    parse_status_callback,
    sms_balance_problem,
)
from tests.fakes.smsru import API_ID, FakeSmsRu

PHONE = "79161234567"
MISSED_CALL = "Мы пропустили ваш звонок и скоро перезвоним. Или напишите нам в Telegram"
assert len(MISSED_CALL) == 72  # over 70: two UCS-2 parts


@pytest.fixture
async def fake_smsru() -> AsyncIterator[FakeSmsRu]:
    fake = FakeSmsRu()
    server = TestServer(fake.app())
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def channel(fake_smsru: FakeSmsRu) -> AsyncIterator[SmsRuChannel]:
    sms = SmsRuChannel(fake_smsru.url, API_ID, sender="Trubka", timeout=1.0)
    yield sms
    await sms.close()


def text(delivery_id: str, body: str, address: str = PHONE) -> OutgoingMessage:
    return OutgoingMessage(delivery_id=delivery_id, address=address, text=body)


# --- sending ---------------------------------------------------------------------------------


async def test_a_sent_sms_names_its_id_parts_and_the_balance_left(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    result = await channel.send(text("d1", MISSED_CALL))

    [sent] = fake_smsru.sent
    assert (sent.phone, sent.text, sent.sender, sent.parts) == (PHONE, MISSED_CALL, "Trubka", 2)
    assert result.provider_message_id == sent.sms_id
    assert (result.parts, result.balance) == (2, 92.0)
    assert channel.last_balance == 92.0
    # POST: the text and the api_id stay out of URLs and access logs.
    [request] = fake_smsru.requests
    assert request.method == "POST" and request.params["json"] == "1"


async def test_the_rules_of_sms(channel: SmsRuChannel) -> None:
    assert channel.kind is ChannelKind.SMS
    assert channel.rules.can_reply is False and channel.rules.costs_money is True
    assert channel.rules.needs_mobile is True and channel.rules.window is None
    assert channel.free_text_allowed(None, datetime.now(UTC))


async def test_the_cost_is_asked_before_sending_and_charges_nothing(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    assert await channel.cost(PHONE, "Hello") == (4.0, 1)
    assert await channel.cost(PHONE, MISSED_CALL) == (8.0, 2)
    assert await channel.cost(PHONE, "x" * 161) == (8.0, 2)
    assert fake_smsru.sent == [] and fake_smsru.balance == 100.0
    with pytest.raises(ChannelError) as refused:
        await channel.cost("74951234567", "Hello")
    assert (refused.value.code, refused.value.permanent) == ("207", True)


@pytest.mark.parametrize(
    ("body", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("[" * 80, 1),  # extension characters take two septets
        ("[" * 81, 2),
        ("я" * 70, 1),
        ("я" * 71, 2),
        ("я" * 134, 2),
        ("я" * 135, 3),
        ("a" * 159 + "я", 3),  # one Cyrillic letter makes the whole text UCS-2
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_parts_are_counted_as_sms_ru_charges_them(body: str, parts: int) -> None:
    assert sms_parts(body) == parts


async def test_test_mode_checks_a_send_but_sends_and_charges_nothing(
    fake_smsru: FakeSmsRu,
) -> None:
    sms = SmsRuChannel(fake_smsru.url, API_ID, test=True)
    try:
        result = await sms.send(text("d1", "Проверка"))
        with pytest.raises(ChannelError) as refused:
            await sms.send(text("d2", "Проверка", address="74951234567"))
    finally:
        await sms.close()
    assert result.provider_message_id
    assert fake_smsru.sent == [] and fake_smsru.balance == 100.0
    assert [t["test"] for t in fake_smsru.tested] == ["1"]
    assert refused.value.code == "207"  # test mode still refuses what a real send would


async def test_out_of_money_is_permanent(channel: SmsRuChannel, fake_smsru: FakeSmsRu) -> None:
    fake_smsru.balance = 3.0
    with pytest.raises(ChannelError) as refused:
        await channel.send(text("d1", "Hello"))
    assert (refused.value.code, refused.value.permanent) == ("201", True)
    assert "out of money" in refused.value.message
    assert fake_smsru.sent == []


@pytest.mark.parametrize(
    ("address", "code"),
    [("74951234567", "207"), ("78001234567", "207"), ("123", "202"), ("7916abc4567", "202")],
)
async def test_a_number_that_may_not_receive_sms_is_refused_for_good(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu, address: str, code: str
) -> None:
    with pytest.raises(ChannelError) as refused:
        await channel.send(text("d1", "Hello", address=address))
    assert (refused.value.code, refused.value.permanent) == (code, True)
    assert fake_smsru.sent == [] and fake_smsru.balance == 100.0


async def test_sms_has_no_templates(channel: SmsRuChannel, fake_smsru: FakeSmsRu) -> None:
    message = OutgoingMessage("d1", PHONE, template=TemplateRef("missed_call", params=("x",)))
    with pytest.raises(ChannelError) as refused:
        await channel.send(message)
    assert (refused.value.code, refused.value.permanent) == ("template", True)
    assert fake_smsru.requests == []


async def test_a_wrong_api_id_and_an_unapproved_sender_are_permanent(
    fake_smsru: FakeSmsRu,
) -> None:
    fake_smsru.senders = {"Shop"}
    wrong = SmsRuChannel(fake_smsru.url, "not-the-key")
    unapproved = SmsRuChannel(fake_smsru.url, API_ID, sender="Trubka")
    try:
        for sms, code in ((wrong, "200"), (unapproved, "204")):
            with pytest.raises(ChannelError) as refused:
                await sms.send(text("d1", "Hello"))
            assert (refused.value.code, refused.value.permanent) == (code, True)
            assert "not-the-key" not in refused.value.message
    finally:
        await wrong.close()
        await unapproved.close()


@pytest.mark.parametrize("failure", [500, 502, 429, "220", "500", "html"])
async def test_server_failures_are_retried_and_the_retry_goes_out(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu, failure: int | str
) -> None:
    fake_smsru.fail_next(failure)
    with pytest.raises(ChannelError) as failed:
        await channel.send(text("d1", "Hello"))
    assert failed.value.permanent is False
    assert fake_smsru.sent == []
    result = await channel.send(text("d1", "Hello"))
    assert [s.sms_id for s in fake_smsru.sent] == [result.provider_message_id]


async def test_a_timeout_is_retryable_and_says_the_sms_may_be_out(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    fake_smsru.fail_next("timeout")
    fake_smsru.timeout_seconds = 1.5
    with pytest.raises(ChannelError) as failed:
        await channel.send(text("d1", "Hello"))
    assert (failed.value.code, failed.value.permanent) == ("timeout", False)
    # SMS.ru sent it all the same; a resend of the same text within a minute is refused (231).
    for _ in range(50):
        if fake_smsru.sent:
            break
        await asyncio.sleep(0.05)
    assert len(fake_smsru.sent) == 1
    with pytest.raises(ChannelError) as repeated:
        await channel.send(text("d1", "Hello"))
    assert (repeated.value.code, repeated.value.permanent) == ("231", True)
    assert len(fake_smsru.sent) == 1


async def test_an_unreachable_sms_ru_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sms = SmsRuChannel(f"http://127.0.0.1:{port}", API_ID, timeout=1.0)
    try:
        with pytest.raises(ChannelError) as failed:
            await sms.send(text("d1", "Hello"))
    finally:
        await sms.close()
    assert (failed.value.code, failed.value.permanent) == ("unreachable", False)


async def test_a_status_can_be_asked_when_no_callback_came(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    sent = await channel.send(text("d1", "Hello"))
    assert sent.provider_message_id is not None
    status = await channel.status(sent.provider_message_id)
    assert status is not None and status.state is DeliveryState.QUEUED
    fake_smsru.statuses[sent.provider_message_id] = 103
    status = await channel.status(sent.provider_message_id)
    assert status is not None and (status.state, status.code) == (DeliveryState.DELIVERED, "103")
    assert await channel.status("000000-404") is None


# --- balance in /healthz ----------------------------------------------------------------------


async def test_the_balance_is_a_health_problem_only_when_it_runs_out(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    assert await channel.balance() == 100.0
    assert await sms_balance_problem(channel, max_age=0) is None
    fake_smsru.balance = 0.0
    assert await sms_balance_problem(channel, max_age=0) == "SMS.ru balance is 0.00"
    assert await sms_balance_problem(channel, threshold=10, max_age=0) == "SMS.ru balance is 0.00"
    fake_smsru.balance = 7.5
    assert await sms_balance_problem(channel, threshold=10, max_age=0) == "SMS.ru balance is 7.50"


async def test_the_health_check_does_not_ask_sms_ru_on_every_probe(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    await channel.send(text("d1", "Hello"))  # the answer names the balance
    fake_smsru.balance = 0.0
    assert await sms_balance_problem(channel) is None  # a minute-old balance is good enough
    assert [r.path for r in fake_smsru.requests] == ["/sms/send"]


async def test_a_down_sms_ru_is_not_our_health_problem(
    channel: SmsRuChannel, fake_smsru: FakeSmsRu
) -> None:
    fake_smsru.fail_next(500)
    assert await sms_balance_problem(channel, max_age=0) is None


# --- the status callback ----------------------------------------------------------------------


def test_status_codes_become_delivery_states() -> None:
    entries = [
        (f"data[{i}]", f"sms_status\n000000-1000000{i}\n{code}\n1764800000")
        for i, code in enumerate([100, 101, 102, 103, 104, 105, 106, 107, 108, 150])
    ]
    statuses = parse_status_callback(entries)
    assert [s.state for s in statuses] == [
        DeliveryState.QUEUED,
        DeliveryState.QUEUED,
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        *[DeliveryState.FAILED] * 6,
    ]
    assert statuses[3] == DeliveryStatus(
        kind=ChannelKind.SMS,
        provider_message_id="000000-10000003",
        state=DeliveryState.DELIVERED,
        at=datetime(2025, 12, 3, 22, 13, 20, tzinfo=UTC),
        code="103",
        detail="доставлено (delivered)",
    )
    assert "lifetime expired" in statuses[4].detail and "истекло" in statuses[4].detail
    assert "no route" in statuses[9].detail


def test_entries_of_other_kinds_and_unknown_codes_are_skipped() -> None:
    form = [
        ("data[]", "callcheck_status\n201937-1000000\n401\n1764800000"),
        ("data[]", "sms_status\n000000-10000001\n110\n1764800000"),
        ("data[]", "sms_status\r\n000000-10000002\r\n103\r\n1764800000"),
        ("other", "x"),
    ]
    [status] = parse_status_callback(form)
    assert (status.provider_message_id, status.state) == ("000000-10000002", "delivered")


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"other": "x"},
        {"data[0]": "sms_status"},
        {"data[0]": "sms_status\n000000-1\n"},
        {"data[0]": "sms_status\n\n103\n1"},
        {"data[0]": "sms_status\n' OR 1=1 --\n103\n1"},
        {"data[0]": "sms_status\n000000-1\nабв\n1"},
        {"data[0]": "sms_status\n000000-1\n١٠٣\n1"},
        {"data[0]": "sms_status\n000000-1\n103\nyesterday"},
        {"data[0]": "sms_status\n000000-1\n103\n99999999999999999999"},
        {f"data[{i}]": "x" for i in range(501)},
    ],
)
def test_broken_bodies_raise_a_value_error(form: dict[str, str]) -> None:
    with pytest.raises(InvalidCallback):
        parse_status_callback(form)


class RecordingInbound:
    """The domain side of the edge (another room's work): records what the edge hands over."""

    def __init__(self) -> None:
        self.statuses: list[DeliveryStatus] = []
        self.messages: list[IncomingMessage] = []

    async def messages_received(self, messages: list[IncomingMessage]) -> None:
        self.messages.extend(messages)

    async def statuses_received(self, statuses: list[DeliveryStatus]) -> None:
        self.statuses.extend(statuses)


@pytest.fixture
async def inbound() -> RecordingInbound:
    return RecordingInbound()


@pytest.fixture
async def edge(
    inbound: RecordingInbound,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(smsru_edge.routes)
    app[CHANNEL_INBOUND] = inbound
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_a_status_from_sms_ru_is_handed_over_and_answered_100(
    edge: TestClient[web.Request, web.Application],
    inbound: RecordingInbound,
    channel: SmsRuChannel,
    fake_smsru: FakeSmsRu,
) -> None:
    sent = await channel.send(text("d1", "Hello"))
    assert sent.provider_message_id is not None
    url = str(edge.make_url("/smsru_callback"))

    answer = await fake_smsru.report_status(url, sent.provider_message_id, 103, at=1764800000)

    assert answer == (200, "100")
    [status] = inbound.statuses
    assert (status.provider_message_id, status.state, status.code) == (
        sent.provider_message_id,
        DeliveryState.DELIVERED,
        "103",
    )
    # SMS.ru batches: several statuses in one body, all handed over in order.
    batch = [(sent.provider_message_id, 102), ("000000-99", 108)]
    assert await fake_smsru.report_statuses(url, batch) == (200, "100")
    assert [(s.provider_message_id, s.state) for s in inbound.statuses[1:]] == [
        (sent.provider_message_id, DeliveryState.SENT),
        ("000000-99", DeliveryState.FAILED),
    ]


async def test_the_edge_answers_text_100_and_refuses_garbage_with_json(
    edge: TestClient[web.Request, web.Application],
    inbound: RecordingInbound,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok = await edge.post(
        "/smsru_callback", data={"data[]": "sms_status\n000000-1\n103\n1764800000"}
    )
    assert (ok.status, ok.content_type, await ok.text()) == (200, "text/plain", "100")
    # PHP-style repeated `data[]` keeps every entry.
    body = urlencode(
        [("data[]", "sms_status\n000000-1\n102\n1"), ("data[]", "sms_status\n000000-2\n103\n1")]
    )
    both = await edge.post(
        "/smsru_callback",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert await both.text() == "100"
    assert [s.provider_message_id for s in inbound.statuses] == ["000000-1", "000000-1", "000000-2"]

    caplog.clear()
    bad = await edge.post("/smsru_callback", data={"data[0]": "sms_status\nnot an id\n103\n1"})
    assert bad.status == 400
    assert (await bad.json())["error"] == "Invalid parameters"
    assert len([r for r in caplog.records if r.name == "handlers.web.smsru"]) == 1
    as_json = await edge.post("/smsru_callback", json={"data": ["sms_status\n000000-1\n103\n1"]})
    assert as_json.status == 400
    nothing_known = await edge.post("/smsru_callback", data={"data[0]": "callcheck_status\n1\n2"})
    assert await nothing_known.text() == "100"
    assert len(inbound.statuses) == 3


async def test_without_sms_configured_the_edge_says_so(fake_smsru: FakeSmsRu) -> None:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(smsru_edge.routes)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/smsru_callback", data={"data[0]": "sms_status\n000000-1\n103\n1"}
        )
        assert response.status == 404
        assert (await response.json())["error"] == "SMS.ru is not configured"


LINES = st.one_of(
    st.sampled_from(["sms_status", "callcheck_status", "", "000000-10000001", "103", "104"]),
    st.sampled_from(["99999999999999999999", "-1", "1e9", "١٠٣", "\x00", "\ud800"]),
    st.text(max_size=30),
)


@st.composite
def callback_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["form", "bytes", "json", "multipart"]))
    if kind == "form":
        entries = draw(st.lists(st.lists(LINES, max_size=5).map("\n".join), max_size=4))
        keys = draw(st.sampled_from(["data[]", "data[0]", "data", "date[]", "data[x"]))
        pairs = [(keys, entry) for entry in entries]
        encoded = urlencode(pairs, errors="surrogatepass").encode()
        if draw(st.booleans()):
            encoded += draw(st.sampled_from([b"&data[]=%ff%fe", b"&data[]=%00", b"&&==", b"%"]))
        content_type = draw(
            st.sampled_from(
                [
                    "application/x-www-form-urlencoded",
                    "application/x-www-form-urlencoded; charset=bogus",
                    "application/x-www-form-urlencoded; charset=latin-1",
                    None,
                ]
            )
        )
        return encoded, content_type
    if kind == "json":
        return json.dumps({"data": draw(st.lists(LINES, max_size=3))}).encode(), "application/json"
    if kind == "multipart":
        return (
            b'--XyZ\r\nContent-Disposition: form-data; name="data[]"\r\n\r\nsms_status\n1\n103\n1'
            + draw(st.sampled_from([b"\r\n--XyZ--\r\n", b"", b"\r\n--XyZ"])),
            draw(st.sampled_from(["multipart/form-data; boundary=XyZ", "multipart/form-data"])),
        )
    return draw(st.binary(max_size=300)), draw(st.sampled_from([None, "text/plain", "x/y"]))


async def test_no_callback_body_gets_a_5xx(
    edge: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    seen: dict[int, int] = {}

    async def post(body: bytes, content_type: str | None) -> tuple[int, str]:
        headers = {"Content-Type": content_type} if content_type else {}
        response = await edge.post(
            "/smsru_callback", data=body, headers=headers, skip_auto_headers=["Content-Type"]
        )
        return response.status, await response.text()

    @settings(max_examples=300, database=None)
    @given(callback_bodies())
    def probe(case: tuple[bytes, str | None]) -> None:
        status, answer = asyncio.run_coroutine_threadsafe(post(*case), loop).result(30)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (case, status, answer)
        if status == 200:
            assert answer == "100"
        else:
            assert "error" in json.loads(answer)

    await loop.run_in_executor(None, probe)
    assert 200 in seen and any(400 <= status < 500 for status in seen), seen
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# --- settings ---------------------------------------------------------------------------------


def test_sms_is_off_until_an_api_id_is_set(fake_smsru: FakeSmsRu) -> None:
    assert smsru_channel(Settings(_env_file=None)) is None
    settings_on = Settings(
        _env_file=None, smsru_api_id=API_ID, smsru_url=fake_smsru.url + "/", smsru_test=True
    )
    sms = smsru_channel(settings_on)
    assert sms is not None and sms.test is True and sms.sender is None
    assert settings_on.sms_daily_limit == 200 and settings_on.smsru_url == fake_smsru.url


async def test_the_channel_from_settings_sends(fake_smsru: FakeSmsRu) -> None:
    sms = smsru_channel(
        Settings(_env_file=None, smsru_api_id=API_ID, smsru_url=fake_smsru.url, sms_sender="Shop")
    )
    assert sms is not None
    try:
        await sms.send(text("d1", "Hello"))
    finally:
        await sms.close()
    assert [s.sender for s in fake_smsru.sent] == ["Shop"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRUBKA_SMSRU_URL", "sms.ru"),
        ("TRUBKA_SMS_SENDER", "A very long sender name"),
        ("TRUBKA_SMS_SENDER", "Магазин"),
        ("TRUBKA_SMS_DAILY_LIMIT", "-1"),
        ("TRUBKA_SMS_DAILY_LIMIT", "many"),
        ("TRUBKA_SMSRU_TEST", "perhaps"),
        ("TRUBKA_SMSRU_TIMEOUT", "0"),
    ],
)
def test_a_wrong_sms_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_a_sender_without_an_api_id_is_half_an_integration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUBKA_SMS_SENDER", "Shop")
    assert problems(load_settings()) == [
        "TRUBKA_SMSRU_API_ID: required when TRUBKA_SMS_SENDER is set (SMS.ru)"
    ]
