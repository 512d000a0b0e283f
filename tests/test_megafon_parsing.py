"""Malformed MegaFon pushes: any fields either parse or are refused naming a field, never crash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from telephony.calls.pushes import ContactQuery, EventPush, HistoryPush, RatingPush
from telephony.providers.megafon import InvalidPayload, parse_push
from tests.megafon_replay import load

FIELD_NAMES = [
    "cmd",
    "type",
    "phone",
    "user",
    "callid",
    "start",
    "duration",
    "status",
    "ext",
    "link",
    "rating",
    "second_callid",
    "direction",
    "diversion",
    "wait",
    "telnum",
]
values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "history",
            "event",
            "contact",
            "rating",
            "INCOMING",
            "in",
            "out",
            "missed",
            "79004443322",
            "701",
            "20241202T081500Z",
            "-1",
            "12",
            "",
        ]
    ),
)
pushes = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=12)


@given(pushes)
def test_any_fields_parse_or_are_refused_naming_a_field(fields: dict[str, str]) -> None:
    try:
        push = parse_push(fields)
    except InvalidPayload as refused:
        assert refused.field in FIELD_NAMES
        assert refused.reason
        return
    assert isinstance(push, EventPush | HistoryPush | ContactQuery | RatingPush)


@given(st.sampled_from(load("inbound_answered") + load("transfer")), st.data())
def test_dropping_a_required_field_is_refused(
    recorded: dict[str, str], data: st.DataObject
) -> None:
    required = {
        "history": ["type", "phone", "start", "duration", "callid", "status", "user"],
        "event": ["type", "phone", "callid", "user"],
        "contact": ["phone"],
    }[recorded["cmd"]]
    missing = data.draw(st.sampled_from(required))
    fields = {k: v for k, v in recorded.items() if k != missing}
    try:
        parse_push(fields)
    except InvalidPayload as refused:
        assert refused.field == missing
    else:
        raise AssertionError(f"{missing} was not required")
