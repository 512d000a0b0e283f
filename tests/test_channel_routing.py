"""Routing: which channel a message to a client takes, as one table (telephony.channels.routing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telephony.channels.base import ChannelKind, TemplateRef
from telephony.channels.routing import Ask, NoRoute, Reach, Route, route

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
PHONE = "79004443322"
TG, WA, SMS = ChannelKind.TELEGRAM, ChannelKind.WHATSAPP, ChannelKind.SMS
ALL = (TG, WA, SMS)
HELLO = Ask(text="Мы пропустили ваш звонок")
TEMPLATE = TemplateRef("missed_call", "ru", ("Ольга",))
TEMPLATE_ONLY = Ask(template=TEMPLATE)
TEMPLATE_OR_TEXT = Ask(text="Мы пропустили ваш звонок", template=TEMPLATE)


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def tg(hours: float | None = None) -> Reach:
    return Reach("telegram", "5001", ago(hours) if hours is not None else None)


def wa(hours: float | None = None) -> Reach:
    return Reach("whatsapp", PHONE, ago(hours) if hours is not None else None)


# (case, ask, identities, configured, phone is mobile, expected: (channel, "text"|"template")
# or the refusal's reason)
# fmt: off
CASES = [
    ("wrote in Telegram last", HELLO, [tg(1), wa(5)], ALL, True, (TG, "text")),
    ("wrote in WhatsApp last, window open", HELLO, [tg(5), wa(1)], ALL, True, (WA, "text")),
    ("WhatsApp window closed: SMS", HELLO, [wa(30)], ALL, True, (SMS, "text")),
    ("WhatsApp window closed, template: WhatsApp", TEMPLATE_OR_TEXT, [wa(30)], ALL, True,
     (WA, "template")),
    ("never wrote, phone only: WhatsApp template", TEMPLATE_OR_TEXT, [], ALL, True,
     (WA, "template")),
    ("never wrote, text: no free WhatsApp text, SMS", HELLO, [], ALL, True, (SMS, "text")),
    ("never wrote, no WhatsApp configured: SMS", TEMPLATE_OR_TEXT, [], (TG, SMS), True,
     (SMS, "text")),
    ("landline, text: no SMS", HELLO, [], ALL, False, "not_mobile"),
    ("landline, template: WhatsApp", TEMPLATE_ONLY, [], ALL, False, (WA, "template")),
    ("template only, no WhatsApp: nothing", TEMPLATE_ONLY, [], (TG, SMS), True, "no_text"),
    ("Telegram only bot, Telegram client", HELLO, [tg(100)], (TG,), True, (TG, "text")),
    ("Telegram only bot, caller", HELLO, [], (TG,), True, "no_channel"),
    ("Telegram client who never wrote, no phone channels", HELLO, [tg()], (TG,), True,
     (TG, "text")),
    ("wrote in Telegram, template falls back to its text", TEMPLATE_OR_TEXT, [tg(1)], (TG,),
     True, (TG, "text")),
]
# fmt: on


@pytest.mark.parametrize(
    ("ask", "reach", "configured", "mobile", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_routing_order(
    ask: Ask,
    reach: list[Reach],
    configured: tuple[ChannelKind, ...],
    mobile: bool,
    expected: tuple[ChannelKind, str] | str,
) -> None:
    chosen = route(ask, reach, phone=PHONE, mobile=mobile, configured=configured, now=NOW)
    if isinstance(expected, str):
        assert isinstance(chosen, NoRoute), chosen
        assert chosen.reason == expected
        assert chosen.detail  # a Russian reason for the dialog
        return
    assert isinstance(chosen, Route), chosen
    kind, content = expected
    assert chosen.kind == kind
    if content == "text":
        assert (chosen.text, chosen.template) == (ask.text, None)
    else:
        assert (chosen.text, chosen.template) == (None, TEMPLATE)
    assert chosen.address == ("5001" if kind == TG else PHONE)


VIA = [
    ("via sms although they wrote in Telegram", SMS, [tg(1)], True, (SMS, "text")),
    ("via whatsapp, window open", WA, [wa(2)], True, (WA, "text")),
    ("via whatsapp, window closed, text", WA, [wa(48)], True, "window_closed"),
    ("via telegram, no Telegram identity", TG, [wa(1)], True, "no_channel"),
    ("via sms to a landline", SMS, [], False, "not_mobile"),
]


@pytest.mark.parametrize(
    ("via", "reach", "mobile", "expected"),
    [case[1:] for case in VIA],
    ids=[case[0] for case in VIA],
)
def test_via_forces_one_channel(
    via: ChannelKind, reach: list[Reach], mobile: bool, expected: tuple[ChannelKind, str] | str
) -> None:
    ask = Ask(text="Перезвоним через 5 минут", via=via)
    chosen = route(ask, reach, phone=PHONE, mobile=mobile, configured=ALL, now=NOW)
    if isinstance(expected, str):
        assert isinstance(chosen, NoRoute) and chosen.reason == expected, chosen
    else:
        assert isinstance(chosen, Route) and chosen.kind == expected[0], chosen


def test_a_channel_that_is_not_configured_is_never_chosen() -> None:
    ask = Ask(text="Привет", via=WA)
    chosen = route(ask, [wa(1)], phone=PHONE, mobile=True, configured=(TG, SMS), now=NOW)
    assert isinstance(chosen, NoRoute) and chosen.reason == "not_configured"
    # Wrote in WhatsApp last, but this bot has no WhatsApp any more: SMS.
    chosen = route(Ask(text="Привет"), [wa(1)], phone=PHONE, mobile=True, configured=(TG, SMS),
                   now=NOW)  # fmt: skip
    assert isinstance(chosen, Route) and chosen.kind == SMS
