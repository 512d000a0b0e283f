"""Novofon signing (the vendor's test vectors), PHP query semantics, webhook signatures,
dispositions and the account time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.calls.pushes import EventPush, HistoryPush
from telephony.providers.megafon import InvalidPayload
from telephony.providers.novofon import (
    SIGNED_FIELDS,
    disposition_status,
    http_build_query,
    parse_call_start,
    parse_notification,
    request_query,
    sign_request,
    verify_webhook,
    webhook_signature,
)
from tests.fakes.novofon import SECRET, expected_signature
from tests.novofon_replay import FIXTURES, load

MOSCOW = ZoneInfo("Europe/Moscow")


def test_request_signature_matches_the_documented_vector() -> None:
    query = request_query({"to": "79991234567", "from": "100"})
    assert query == "format=json&from=100&to=79991234567"
    assert (
        sign_request("secret", "/v1/request/callback/", query)
        == "OWNlYTdlY2Y0ODI1YjVmM2JiZWExOTE1YWIzOGM0YzIwMDBjMmU5Mg=="
    )


def test_webhook_signature_matches_the_documented_vector() -> None:
    fields = {
        "event": "NOTIFY_START",
        "caller_id": "79991234567",
        "called_did": "74951234567",
        "call_start": "2024-01-01 12:00:00",
    }
    signature = "MGE5MjY4YjljM2ZlZDVhZWZiNzBmNTEwYWZkZGQ2Yzg0MGUxNDljMQ=="
    assert webhook_signature("secret", fields) == signature
    assert len(signature) == 56  # base64 of the HEX digest, not of the 20 raw bytes
    assert verify_webhook("secret", fields, signature)
    assert not verify_webhook("secret", {**fields, "caller_id": "79991234568"}, signature)
    assert not verify_webhook("other", fields, signature)
    assert not verify_webhook(None, fields, signature)
    assert not verify_webhook("secret", fields, None)


def test_query_follows_php_http_build_query() -> None:
    assert http_build_query({"a": "x y", "b": "~tilde", "c": "ё&=+"}) == (
        "a=x+y&b=%7Etilde&c=%D1%91%26%3D%2B"
    )
    assert http_build_query({"t": True, "f": False, "n": None, "i": 0}) == "t=1&f=0&i=0"
    assert http_build_query({"a": ["x", None, "z"], "m": {"k": "v"}}) == (
        "a%5B0%5D=x&a%5B2%5D=z&m%5Bk%5D=v"
    )
    # Sorted by key, nulls dropped, format=json added: the same string is sent and signed.
    assert request_query({"to": "1", "sip": None, "from": "2", "predicted": True}) == (
        "format=json&from=2&predicted=1&to=1"
    )


def test_signing_agrees_with_an_independent_implementation() -> None:
    query = request_query({"pbx_call_id": "in_1~2 3", "start": "2024-01-01 00:00:00"})
    path = "/v1/pbx/record/request/"
    assert sign_request(SECRET, path, query) == expected_signature(SECRET, path, query)


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.yaml")))
def test_every_recorded_webhook_carries_a_valid_signature(name: str) -> None:
    for recorded in load(name):
        fields = {k: v for k, v in recorded.items() if k != "Signature"}
        assert verify_webhook(SECRET, fields, recorded["Signature"]), recorded


def test_outgoing_events_are_signed_with_internal_and_destination() -> None:
    assert SIGNED_FIELDS["NOTIFY_OUT_START"] == ("internal", "destination", "call_start")
    fields = {
        "event": "NOTIFY_OUT_START",
        "internal": "100",
        "destination": "79261234567",
        "call_start": "2024-03-15 16:20:00",
        "caller_id": "74951234567",
    }
    signature = webhook_signature(SECRET, fields)
    assert verify_webhook(SECRET, {**fields, "caller_id": "0"}, signature)
    assert not verify_webhook(SECRET, {**fields, "internal": "101"}, signature)


@pytest.mark.parametrize(
    ("disposition", "status"),
    [
        ("answered", "Success"),
        ("busy", "Busy"),
        ("cancel", "Cancel"),
        ("no answer", "Missed"),
        ("NO ANSWER", "Missed"),
        ("failed", "NotAvailable"),
        ("no money", "NotAllowed"),
        ("unallocated number", "NotFound"),
        ("no trunk", "NoTrunk"),
    ],
)
def test_dispositions_map_to_the_shared_statuses(disposition: str, status: str) -> None:
    assert disposition_status(disposition) == status


def test_call_start_is_converted_from_the_account_zone_to_utc() -> None:
    assert parse_call_start("2024-03-15 14:05:10", MOSCOW) == datetime(
        2024, 3, 15, 11, 5, 10, tzinfo=UTC
    )
    # A zone with summer time: the same wall clock is 2 h or 1 h ahead of UTC.
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_call_start("2024-07-01 12:00:00", berlin).hour == 10
    assert parse_call_start("2024-01-01 12:00:00", berlin).hour == 11
    with pytest.raises(InvalidPayload) as error:
        parse_call_start("2024-01-01T12:00:00Z", MOSCOW)
    assert error.value.field == "call_start"


def test_end_events_become_completed_and_history() -> None:
    end = load("inbound_answered")[4]
    notification = parse_notification(end, MOSCOW)
    (completed, _), (history, _) = notification.pushes
    assert isinstance(completed, EventPush) and completed.type == "COMPLETED"
    assert isinstance(history, HistoryPush)
    assert (history.status, history.duration, history.direction) == ("Success", 95, "in")
    assert history.start == datetime(2024, 3, 15, 11, 5, 10, tzinfo=UTC)
    missed = parse_notification(load("inbound_missed")[-1], MOSCOW)
    assert [type(p).__name__ for p, _ in missed.pushes] == ["HistoryPush"]


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event",
                *sorted({f for v in SIGNED_FIELDS.values() for f in v}),
                "pbx_call_id",
                "disposition",
                "duration",
            ]
        ),
        st.text(max_size=30),
    )
)
def test_malformed_webhooks_raise_invalid_payload_or_parse(fields: dict[str, str]) -> None:
    try:
        parse_notification(fields, MOSCOW)
    except InvalidPayload as exc:
        assert exc.field
