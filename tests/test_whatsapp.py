"""The WhatsApp channel against the fake Cloud API over HTTP (tests/fakes/whatsapp.py enforces
the 24 h window, templates, the token, the rate limits), and `/whatsapp_webhook` served in a small
aiohttp app whose `ChannelInbound` records what it is handed (the domain side is tested with the
whole app elsewhere).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import integrations
from bot.channels import whatsapp_channel, whatsapp_webhook_config
from handlers.web.channel_inbound import CHANNEL_INBOUND
from handlers.web.errors import json_errors
from handlers.web.whatsapp import WHATSAPP_WEBHOOK, WhatsAppWebhookConfig
from handlers.web.whatsapp import routes as whatsapp_routes
from telephony.channels.base import (
    ChannelError,
    ChannelKind,
    DeliveryState,
    DeliveryStatus,
    IncomingMessage,
    OutgoingMessage,
    TemplateRef,
)
from telephony.channels.whatsapp import (
    InvalidWebhook,
    WhatsAppChannel,
    parse_webhook,
    verify_signature,
)
from tests.conftest import test_settings as app_settings
from tests.fakes.whatsapp import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    FakeWhatsApp,
    meta_json,
    sign,
)

VERIFY_TOKEN = "test-verify-token"
CLIENT = "79161234567"
OTHER = "79035550011"

TestAppClient = TestClient[web.Request, web.Application]


@dataclass
class RecordingInbound:
    """The domain's side of the edge, recorded."""

    messages: list[IncomingMessage] = field(default_factory=list)
    statuses: list[DeliveryStatus] = field(default_factory=list)

    async def messages_received(self, messages: list[IncomingMessage]) -> None:
        self.messages.extend(messages)

    async def statuses_received(self, statuses: list[DeliveryStatus]) -> None:
        self.statuses.extend(statuses)


@dataclass
class Edge:
    client: TestAppClient
    inbound: RecordingInbound
    url: str


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    whatsapp = FakeWhatsApp()
    whatsapp.register_template("missed_call", params=1)
    whatsapp.register_template("hello", params=0, language="en")
    server = TestServer(whatsapp.app())
    await server.start_server()
    whatsapp.url = str(server.make_url("")).rstrip("/")
    yield whatsapp
    await server.close()


@pytest.fixture
async def channel(fake: FakeWhatsApp) -> AsyncIterator[WhatsAppChannel]:
    sender = WhatsAppChannel(fake.url, TOKEN, PHONE_NUMBER_ID, timeout=1.0)
    yield sender
    await sender.close()


async def _serve(config: WhatsAppWebhookConfig | None) -> Edge:
    app = web.Application(middlewares=[json_errors])
    app.add_routes(whatsapp_routes)
    inbound = RecordingInbound()
    app[CHANNEL_INBOUND] = inbound
    if config is not None:
        app[WHATSAPP_WEBHOOK] = config
    client: TestAppClient = TestClient(TestServer(app))
    await client.start_server()
    return Edge(client, inbound, str(client.make_url("/whatsapp_webhook")))


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    served = await _serve(WhatsAppWebhookConfig(app_secret=APP_SECRET, verify_token=VERIFY_TOKEN))
    yield served
    await served.client.close()


def _text(text: str, to: str = CLIENT, delivery_id: str = "d-1") -> OutgoingMessage:
    return OutgoingMessage(delivery_id=delivery_id, address=to, text=text)


def _template(name: str, *params: str, language: str = "ru", to: str = CLIENT) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=f"t-{name}", address=to, template=TemplateRef(name, language, params)
    )


async def _refused(channel: WhatsAppChannel, message: OutgoingMessage) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(message)
    return caught.value


# --- sending ---------------------------------------------------------------------------------


async def test_a_client_who_wrote_gets_free_text_and_their_message_reaches_the_domain(
    fake: FakeWhatsApp, channel: WhatsAppChannel, edge: Edge
) -> None:
    delivery = await fake.client_writes(edge.url, CLIENT, "Перезвоните мне / please", "Иван")
    assert delivery.status == 200
    [incoming] = edge.inbound.messages
    assert (incoming.kind, incoming.address, incoming.text, incoming.profile_name) == (
        ChannelKind.WHATSAPP,
        CLIENT,
        "Перезвоните мне / please",
        "Иван",
    )
    assert incoming.provider_message_id == delivery.message_id
    assert b"\\u0418\\u0432\\u0430\\u043d" in delivery.body  # Meta's escaping, signed as sent

    result = await channel.send(_text("Здравствуйте, Иван!", delivery_id="delivery-42"))
    [sent] = fake.sent
    assert result.provider_message_id == sent.wamid
    assert (sent.to, sent.type, sent.text) == (CLIENT, "text", "Здравствуйте, Иван!")
    assert sent.callback_data == "delivery-42"  # echoed in its statuses
    assert fake.attempts[-1].authorization == f"Bearer {TOKEN}"


async def test_free_text_outside_the_24_hour_window_is_refused_for_good(
    fake: FakeWhatsApp, channel: WhatsAppChannel, edge: Edge
) -> None:
    never_wrote = await _refused(channel, _text("Мы пропустили ваш звонок"))
    assert (never_wrote.code, never_wrote.permanent) == ("131047", True)

    await fake.client_writes(edge.url, CLIENT, "Алло")
    fake.advance(24 * 3600 + 60)
    assert not channel.free_text_allowed(edge.inbound.messages[0].at, _fake_now(fake))
    expired = await _refused(channel, _text("Вы ещё здесь?"))
    assert (expired.code, expired.permanent) == ("131047", True)
    assert "Re-engagement" in expired.message
    assert fake.sent == []


def _fake_now(fake: FakeWhatsApp) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(fake.now(), UTC)


async def test_a_template_goes_outside_the_window_with_its_language_and_parameters(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    result = await channel.send(_template("missed_call", "Иван"))
    greeting = await channel.send(_template("hello", language="en", to=OTHER))
    first, second = fake.sent
    assert result.provider_message_id == first.wamid
    assert greeting.provider_message_id == second.wamid
    assert (first.type, first.template, first.language, first.params) == (
        "template",
        "missed_call",
        "ru",
        ["Иван"],
    )
    assert (second.template, second.language, second.params) == ("hello", "en", [])


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (_template("missed_call"), "132000"),
        (_template("missed_call", "Иван", "лишний"), "132000"),
        (_template("no_such_template", "x"), "132001"),
        (_template("missed_call", "Иван", language="en"), "132001"),
    ],
)
async def test_a_wrong_template_is_refused_for_good(
    fake: FakeWhatsApp, channel: WhatsAppChannel, message: OutgoingMessage, code: str
) -> None:
    error = await _refused(channel, message)
    assert (error.code, error.permanent) == (code, True)
    assert fake.sent == []


async def test_the_pair_rate_limit_is_retried_later(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.pair_limit, fake.pair_window = 2, 6.0
    for _ in range(2):
        await channel.send(_template("missed_call", "Иван"))
    error = await _refused(channel, _template("missed_call", "Иван"))
    assert (error.code, error.permanent) == ("131056", False)
    assert error.retry_after is not None and error.retry_after >= 1
    await channel.send(_template("missed_call", "Пётр", to=OTHER))  # another person: fine
    fake.advance(error.retry_after)
    await channel.send(_template("missed_call", "Иван"))  # after the wait it goes
    assert len(fake.to(CLIENT)) == 3


async def test_the_numbers_throughput_limit_is_retried_later(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.throughput = 1
    await channel.send(_template("missed_call", "Иван"))
    error = await _refused(channel, _template("missed_call", "Пётр", to=OTHER))
    assert (error.code, error.permanent) == ("130429", False)
    assert error.retry_after is not None and error.retry_after > 0


async def test_a_number_not_on_whatsapp_and_a_dead_token_are_refused_for_good(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.not_on_whatsapp.add(OTHER)
    undeliverable = await _refused(channel, _template("missed_call", "x", to=OTHER))
    assert (undeliverable.code, undeliverable.permanent) == ("131026", True)

    wrong_token = WhatsAppChannel(fake.url, "EAAG-old-token-9f3", PHONE_NUMBER_ID)
    try:
        error = await _refused(wrong_token, _template("missed_call", "x"))
    finally:
        await wrong_token.close()
    assert (error.code, error.permanent) == ("190", True)
    assert "EAAG" not in error.message  # the token itself is never in an error
    assert fake.sent == []


async def test_outages_and_timeouts_are_retried(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.fail(503)
    outage = await _refused(channel, _template("missed_call", "x"))
    assert (outage.code, outage.permanent) == (None, False)
    assert "503" in outage.message

    fake.fail_with(131000, status=500)
    meta_down = await _refused(channel, _template("missed_call", "x"))
    assert (meta_down.code, meta_down.permanent) == ("131000", False)

    fake.stall(1.5)  # longer than the channel's 1 s timeout
    timeout = await _refused(channel, _template("missed_call", "x"))
    assert (timeout.code, timeout.permanent) == ("timeout", False)  # the sender: uncertain
    assert "in time" in timeout.message

    # Meta sent it anyway: the queue's retry carries the same delivery id (and the domain
    # matches the later status by wamid), which is why retries must be by delivery id.
    assert [m.callback_data for m in fake.sent] == ["t-missed_call"]
    assert (await channel.send(_template("missed_call", "x"))).provider_message_id


async def test_nothing_to_send_is_refused_without_a_request(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    error = await _refused(channel, OutgoingMessage(delivery_id="e", address=CLIENT))
    assert error.permanent and fake.attempts == []
    too_long = await _refused(channel, _text("я" * 4097))
    assert too_long.permanent and fake.attempts == []


def test_the_channels_rules() -> None:
    rules = WhatsAppChannel.rules
    assert (rules.can_reply, rules.costs_money) == (True, True)
    assert rules.window is not None and rules.window.total_seconds() == 24 * 3600
    assert WhatsAppChannel.kind == ChannelKind.WHATSAPP


# --- the webhook edge ------------------------------------------------------------------------


async def test_the_handshake_echoes_the_challenge_only_with_our_verify_token(edge: Edge) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    ok = await edge.client.get("/whatsapp_webhook", params=query)
    assert (ok.status, await ok.text()) == (200, "1158201444")

    for wrong in (
        {**query, "hub.verify_token": "guess"},
        {**query, "hub.mode": "unsubscribe"},
        {"hub.challenge": "1"},
    ):
        refused = await edge.client.get("/whatsapp_webhook", params=wrong)
        assert refused.status == 403
        assert (await refused.json())["error"] == "Invalid verify token"


async def test_an_unconfigured_webhook_is_not_found() -> None:
    served = await _serve(None)
    try:
        response = await served.client.post("/whatsapp_webhook", data=b"{}")
        assert response.status == 404
        assert "error" in await response.json()
    finally:
        await served.client.close()


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha256=00", sign("another-secret", b"x"), "md5=abc", "sha256=zz"],
)
async def test_a_body_without_the_right_signature_is_refused(
    fake: FakeWhatsApp, edge: Edge, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    body = meta_json(_inbound_body())
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = await edge.client.post("/whatsapp_webhook", data=body, headers=headers)
    assert response.status == 401
    assert await response.json() == {"error": "Invalid signature"}
    assert edge.inbound.messages == []
    assert APP_SECRET not in caplog.text


async def test_a_signature_over_other_bytes_is_refused(fake: FakeWhatsApp, edge: Edge) -> None:
    body = _inbound_body()
    reserialized = json.dumps(body, ensure_ascii=False).encode()  # same JSON, other bytes
    delivery = await fake.post_webhook(
        edge.url, reserialized, signature=sign(APP_SECRET, meta_json(body))
    )
    assert delivery.status == 401
    assert edge.inbound.messages == []


async def test_statuses_reach_the_domain_with_metas_error_code(
    fake: FakeWhatsApp, channel: WhatsAppChannel, edge: Edge
) -> None:
    fake.not_on_whatsapp.clear()
    result = await channel.send(_template("missed_call", "Иван"))
    wamid = result.provider_message_id
    assert wamid is not None
    for state in ("sent", "delivered", "read"):
        assert (await fake.report_status(edge.url, wamid, state)).status == 200
    failed = await fake.report_status(edge.url, wamid, "failed", error_code=131047)
    assert failed.status == 200
    got = [(s.provider_message_id, s.state, s.code) for s in edge.inbound.statuses]
    assert got == [
        (wamid, DeliveryState.SENT, None),
        (wamid, DeliveryState.DELIVERED, None),
        (wamid, DeliveryState.READ, None),
        (wamid, DeliveryState.FAILED, "131047"),
    ]
    assert edge.inbound.statuses[-1].detail == "Re-engagement message"
    assert all(s.kind == ChannelKind.WHATSAPP for s in edge.inbound.statuses)


async def test_a_repeated_delivery_is_handed_over_again_with_the_same_id(
    fake: FakeWhatsApp, edge: Edge
) -> None:
    first = await fake.client_writes(edge.url, CLIENT, "Алло")
    again = await fake.post_webhook(edge.url, first.body)  # Meta's retry: the same bytes
    assert (first.status, again.status) == (200, 200)
    ids = [m.provider_message_id for m in edge.inbound.messages]
    assert ids == [first.message_id, first.message_id]  # the domain keeps one per id


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "image", "image": {"id": "1", "caption": "фото счёта"}}, "[image] фото счёта"),
        ({"type": "image", "image": {"id": "1"}}, "[image]"),
        ({"type": "audio", "audio": {"id": "2", "voice": True}}, "[audio]"),
        ({"type": "document", "document": {"id": "3", "filename": "a.pdf"}}, "[document]"),
        ({"type": "sticker", "sticker": {"id": "4"}}, "[sticker]"),
        ({"type": "location", "location": {"latitude": 55.7, "name": "Офис"}}, "[location] Офис"),
        ({"type": "reaction", "reaction": {"message_id": "w", "emoji": "👍"}}, "[reaction 👍]"),
        ({"type": "button", "button": {"text": "Перезвоните", "payload": "p"}}, "Перезвоните"),
        (
            {
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": "1", "title": "Да"}},
            },
            "Да",
        ),
        ({"type": "unsupported", "errors": [{"code": 131051}]}, "[unsupported message]"),
        ({"type": "ephemeral"}, "[ephemeral]"),
    ],
)
async def test_other_message_types_arrive_as_a_readable_line(
    fake: FakeWhatsApp, edge: Edge, message: dict[str, Any], text: str
) -> None:
    delivery = await fake.client_sends(edge.url, CLIENT, message, "Иван")
    assert delivery.status == 200
    [incoming] = edge.inbound.messages
    assert (incoming.text, incoming.address, incoming.profile_name) == (text, CLIENT, "Иван")


async def test_other_webhook_fields_are_acknowledged_with_nothing_handed_over(
    fake: FakeWhatsApp, edge: Edge
) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {"field": "message_template_status_update", "value": {"event": "APPROVED"}}
                ],
            }
        ],
    }
    delivery = await fake.post_webhook(edge.url, body)
    assert (delivery.status, json.loads(delivery.answer)) == (200, {})
    assert edge.inbound.messages == [] and edge.inbound.statuses == []


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"not json", "body is not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"object": "page", "entry": []}', "must be 'whatsapp_business_account'"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "must be a list"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[" * 5000, "nested deeper"),
    ],
)
async def test_a_signed_bad_body_is_a_400_with_one_log_line(
    fake: FakeWhatsApp, edge: Edge, raw: bytes, detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    delivery = await fake.post_webhook(edge.url, raw)
    assert delivery.status == 400
    answer = json.loads(delivery.answer)
    assert answer["error"] == "Invalid parameters" and detail in answer["detail"]
    lines = [r for r in caplog.records if r.name.startswith("handlers.web")]
    assert len(lines) == 1 and not lines[0].exc_info
    assert edge.inbound.messages == []


async def test_a_message_with_a_broken_field_names_the_field(
    fake: FakeWhatsApp, edge: Edge
) -> None:
    body = _inbound_body()
    body["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "+7 916 123"
    delivery = await fake.post_webhook(edge.url, body)
    assert delivery.status == 400
    assert json.loads(delivery.answer)["field"] == "entry[0].changes[0].value.messages[0].from"


def _inbound_body(sender: str = CLIENT) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                            "contacts": [{"profile": {"name": "Иван"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQz",
                                    "timestamp": "1733312000",
                                    "type": "text",
                                    "text": {"body": "Алло"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


# --- signatures and parsing, by themselves ----------------------------------------------------


def test_verify_signature() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    good = sign(APP_SECRET, body)
    assert verify_signature(APP_SECRET, body, good)
    assert verify_signature(APP_SECRET, body, good.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(APP_SECRET, body + b" ", good)
    assert not verify_signature("", body, sign("", body))  # no secret configured: nothing passes
    assert not verify_signature(APP_SECRET, body, good.removeprefix("sha256="))
    assert not verify_signature(APP_SECRET, body, None)
    assert not verify_signature(APP_SECRET, body, "sha256=\udcff")


def test_parse_webhook_reads_metas_example() -> None:
    parsed = parse_webhook(_inbound_body())
    [message] = parsed.messages
    assert message.at.isoformat() == "2024-12-04T11:33:20+00:00"
    assert (message.text, message.profile_name) == ("Алло", "Иван")


# Values Meta would never send, in every position of its shape.
_WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "99999999999999", "7916", "٣٣٣٣٣٣", "79161234567"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _or_weird(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, _WEIRD)


_MESSAGE = st.fixed_dictionaries(
    {
        "from": _or_weird(st.from_regex(r"\A7\d{10}\Z")),
        "id": _or_weird(st.just("wamid.X")),
        "timestamp": _or_weird(st.from_regex(r"\A1\d{9}\Z")),
        "type": _or_weird(st.sampled_from(["text", "image", "button", "interactive", "location"])),
    },
    optional={
        "text": _or_weird(st.fixed_dictionaries({"body": _or_weird(st.text(max_size=20))})),
        "image": _or_weird(st.fixed_dictionaries({"caption": _WEIRD})),
        "button": _WEIRD,
        "interactive": _or_weird(st.fixed_dictionaries({"button_reply": _WEIRD})),
    },
)
_STATUS = st.fixed_dictionaries(
    {
        "id": _or_weird(st.just("wamid.Y")),
        "status": _or_weird(st.sampled_from(["sent", "delivered", "read", "failed", "deleted"])),
        "timestamp": _or_weird(st.from_regex(r"\A1\d{9}\Z")),
    },
    optional={
        "errors": _or_weird(
            st.lists(st.fixed_dictionaries({"code": _WEIRD, "title": _WEIRD}), max_size=2)
        )
    },
)
_VALUE = st.fixed_dictionaries(
    {},
    optional={
        "contacts": _or_weird(
            st.lists(
                st.fixed_dictionaries(
                    {"wa_id": _WEIRD, "profile": _or_weird(st.fixed_dictionaries({"name": _WEIRD}))}
                ),
                max_size=2,
            )
        ),
        "messages": _or_weird(st.lists(_or_weird(_MESSAGE), max_size=2)),
        "statuses": _or_weird(st.lists(_or_weird(_STATUS), max_size=2)),
    },
)
_CHANGE = st.fixed_dictionaries(
    {"field": _or_weird(st.just("messages")), "value": _or_weird(_VALUE)}
)
_ENTRY = st.fixed_dictionaries({"changes": _or_weird(st.lists(_or_weird(_CHANGE), max_size=2))})
_BODY = st.one_of(
    _WEIRD,
    st.fixed_dictionaries(
        {
            "object": _or_weird(st.just("whatsapp_business_account")),
            "entry": _or_weird(st.lists(_or_weird(_ENTRY), max_size=2)),
        }
    ),
)


@settings(max_examples=300, database=None)
@given(_BODY)
def test_parse_webhook_turns_any_body_into_a_result_or_a_value_error(body: Any) -> None:
    try:
        parsed = parse_webhook(body)
    except InvalidWebhook as exc:
        assert exc.field
        return
    for message in parsed.messages:
        assert message.address.isdigit() and isinstance(message.text, str)
    for status in parsed.statuses:
        assert status.state in DeliveryState and status.provider_message_id


async def test_the_webhook_never_answers_5xx_to_generated_bodies(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    seen: dict[int, int] = {}

    async def post(raw: bytes, signed: bool) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = sign(APP_SECRET, raw)
        response = await edge.client.post("/whatsapp_webhook", data=raw, headers=headers)
        return response.status, (await response.text())[:300]

    raw_bodies = st.one_of(
        _BODY.map(lambda body: meta_json(body)),
        _BODY.map(lambda body: json.dumps(body, ensure_ascii=False).encode()),
        st.binary(max_size=120),
        st.sampled_from([b"[" * 3000, b'{"a":' * 100, b'"\\ud800"', b'{"x": "\\u0000"}']),
    )

    @settings(max_examples=250, database=None, derandomize=True)  # the mix asserted below, always
    @given(raw_bodies, st.sampled_from([True, True, True, False]))
    def probe(raw: bytes, signed: bool) -> None:
        status, text = asyncio.run_coroutine_threadsafe(post(raw, signed), loop).result(30)
        seen[status] = seen.get(status, 0) + 1
        assert status in (200, 400, 401, 413), (raw, status, text)
        assert signed or status == 401

    await loop.run_in_executor(None, probe)
    assert seen.get(200) and seen.get(400) and seen.get(401), seen
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert all(m.address.isdigit() for m in edge.inbound.messages)


# --- settings --------------------------------------------------------------------------------


def test_whatsapp_is_on_only_with_all_four_settings() -> None:
    off = app_settings()
    assert whatsapp_channel(off) is None and whatsapp_webhook_config(off) is None
    assert not [p for p in integrations.problems(off) if "WHATSAPP" in p]
    assert "WhatsApp: off" in "\n".join(integrations.summary(off))

    half = app_settings(whatsapp_token="t", whatsapp_phone_number_id="1065")
    problems = [p for p in integrations.problems(half) if "WHATSAPP" in p]
    assert problems == [
        "TRUBKA_WHATSAPP_APP_SECRET: required when TRUBKA_WHATSAPP_TOKEN is set (WhatsApp)",
        "TRUBKA_WHATSAPP_VERIFY_TOKEN: required when TRUBKA_WHATSAPP_TOKEN is set (WhatsApp)",
    ]

    on = app_settings(
        whatsapp_token="t",
        whatsapp_phone_number_id="1065",
        whatsapp_app_secret="app-secret-value",
        whatsapp_verify_token="verify-token-value",
    )
    assert isinstance(whatsapp_channel(on), WhatsAppChannel)
    config = whatsapp_webhook_config(on)
    assert config == WhatsAppWebhookConfig("app-secret-value", "verify-token-value")
    assert "value" not in repr(config)
    assert on.whatsapp_url == "https://graph.facebook.com"
    assert on.whatsapp_template_language == "ru"
