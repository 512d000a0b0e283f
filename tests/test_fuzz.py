"""Every route under generated bad input: never a 5xx, and the service still works afterwards.

Hypothesis builds requests the way a buggy PBX, a broken site script or a fuzzer would: odd and
unknown charsets, invalid UTF-8, JSON nested a thousand levels deep, broken multipart, numbers
far out of range, ids beyond 64 bits, NULs and lone surrogates, with and without valid
credentials (so the inputs reach the code behind the token checks). Each runs on SQLite and on
PostgreSQL; afterwards a whole call is replayed and must be applied as usual.

Hypothesis drives a synchronous function in a worker thread; each request it makes runs on the
test's event loop, where the app is served.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from handlers.web.context import CALLS
from storage.db import Database
from storage.models import Call, CallEvent
from telephony.providers.novofon import SIGNED_FIELDS, webhook_signature
from tests.conftest import API_TOKEN, CRM_TOKEN, AppClient, AppFactory
from tests.megafon_replay import load, replay
from tests.tracking_support import CHROME, SITE, TOML, write_config

NOVOFON_KEY, NOVOFON_SECRET = "fuzz-key", "fuzz-secret"
FORM = "application/x-www-form-urlencoded"
BIG_NUMBERS = [
    "99999999999999999999",
    "3000000000",
    "9223372036854775808",
    "18446744073709551616",
    "-1",
    "-9223372036854775809",
    "1e400",
    "NaN",
    "Infinity",
    "0x10",
    "1_000",
    "²",
    "٣",
    " 12 ",
    "1" * 5000,
]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=bogus",
    "application/json; charset=utf-16",
    "application/json; charset=utf-7",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=bogus",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data; boundary=",
    "text/plain;charset=UTF-8",
    "text/plain; charset=\"utf-8\"",
    "application/json; charset=cp1047",
    "application/octet-stream",
]
FIELD_NAMES = [
    "cmd", "type", "phone", "user", "callid", "duration", "start", "status", "rating", "wait",
    "ext", "link", "event", "pbx_call_id", "call_start", "caller_id", "called_did", "internal",
    "disposition", "is_recorded", "call_id_with_rec", "client_phone", "manager_id", "url",
    "visit_id", "name", "email", "comment", "is_need_callback", "limit", "after_id", "website",
]  # fmt: skip
COMMANDS = ["history", "event", "contact", "rating", "", "HISTORY"]
NOVOFON_EVENTS = sorted(SIGNED_FIELDS)


def _text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(BIG_NUMBERS),
        st.text(max_size=40),
        st.sampled_from(["79161234567", "8 (916) 123-45-67", "+7", "", "\x00", "in", "out"]),
        st.sampled_from(["INCOMING", "ACCEPTED", "COMPLETED", "Success", "Missed"]),
        st.sampled_from(["20240105T101010Z", "2024-01-05 10:10:10", "99999999T999999Z"]),
        # Dates at the ends of the calendar (signed Novofon pushes carry them too).
        st.sampled_from(["0001-01-01 00:00:00", "9999-12-31 23:59:59", "00010101T000000Z"]),
    )


def _json_value() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.floats(),
            _text(),
        ),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=3),
        max_leaves=8,
    )


@st.composite
def _fields(draw: st.DrawFn) -> dict[str, str]:
    fields = draw(st.dictionaries(st.sampled_from(FIELD_NAMES), _text(), max_size=10))
    if draw(st.booleans()):
        fields["cmd"] = draw(st.sampled_from(COMMANDS))
        fields["crm_token"] = CRM_TOKEN
    if draw(st.booleans()):
        fields["event"] = draw(st.sampled_from(NOVOFON_EVENTS))
    return fields


@st.composite
def _body(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["form", "json", "deep", "bytes", "multipart", "none"]))
    if kind == "form":
        fields = draw(_fields())
        encoded = urlencode(fields).encode()
        if draw(st.booleans()):
            encoded += draw(st.sampled_from([b"&x=%ff%fe", b"&%c3%28=1", b"&y=%00", b"&&=="]))
        return encoded, fields
    if kind == "json":
        fields = draw(_fields())
        value: Any = draw(st.one_of(_json_value(), st.just(fields)))
        text = json.dumps(value, allow_nan=True)
        if draw(st.booleans()):
            text = text.replace('"', '"\\ud800', 1)  # a lone surrogate escape
        return text.encode(), fields
    if kind == "deep":
        depth = draw(st.sampled_from([33, 200, 1000, 5000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return (opener * depth).encode(), {}
    if kind == "bytes":
        return draw(st.binary(max_size=200)), {}
    if kind == "multipart":
        header = draw(
            st.sampled_from(
                [
                    b'Content-Disposition: form-data; name="cmd"',
                    b"Content-Disposition: form-data; name=",
                    b"Content-Disposition: \xff\xfe",
                    b'Content-Disposition: form-data; name="f"; filename="a.txt"',
                    b"Content-Type: text/plain; charset=bogus",
                    b"",
                ]
            )
        )
        tail = draw(st.sampled_from([b"\r\n--XyZ--\r\n", b"", b"\r\n--XyZ"]))
        return b"--XyZ\r\n" + header + b"\r\n\r\nhistory" + tail, {}
    return b"", {}


@dataclass
class Probe:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    found = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if not path:
            continue
        for route in resource:
            if route.method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                found.add((route.method, str(path)))
    return sorted(found)


@st.composite
def _probe(draw: st.DrawFn, routes: list[tuple[str, str]]) -> Probe:
    method, template = draw(st.sampled_from(routes))
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        piece = draw(st.sampled_from([*BIG_NUMBERS[:4], "1", "0", "abc", "%00"]))
        path = path[:start] + piece + path[end + 1 :]
    body, fields = draw(_body())
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    if fields.get("event") in SIGNED_FIELDS and draw(st.booleans()):
        headers["Signature"] = webhook_signature(NOVOFON_SECRET, fields)
    if path.startswith("/ct/"):
        headers.update({"Origin": SITE, "User-Agent": CHROME})
    query = draw(st.dictionaries(st.sampled_from(FIELD_NAMES), _text(), max_size=3))
    return Probe(method, path, query, body, headers)


async def _send(client: AppClient, probe: Probe) -> tuple[int, str]:
    response = await client.request(
        probe.method,
        probe.path,
        params=[(k, v.replace("\x00", "")) for k, v in probe.query.items()],
        data=probe.body if probe.method != "GET" else None,
        headers=probe.headers,
        skip_auto_headers=["Content-Type"],
    )
    return response.status, (await response.text())[:300]


@pytest.fixture
async def fuzzed_app(make_client: AppFactory, any_db: Database, tmp_path: Path) -> AppClient:
    return await make_client(
        any_db,
        # The site widgets on: /ct/v1/callback is fuzzed past its 404 too.
        config=write_config(tmp_path, TOML + "\n[tracking.widgets]\nenabled = true\n"),
        novofon_key=NOVOFON_KEY,
        novofon_secret=NOVOFON_SECRET,
    )


async def test_no_route_answers_5xx_to_bad_input_and_calls_still_work(
    fuzzed_app: AppClient, any_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    client = fuzzed_app
    loop = asyncio.get_running_loop()
    routes = _routes(client.app)
    assert ("POST", "/megafon_webhook") in routes and ("POST", "/ct/v1/visit") in routes
    assert ("POST", "/ct/v1/callback") in routes
    seen: dict[int, int] = {}

    @settings(max_examples=400, database=None)
    @given(_probe(routes))
    def probe_one(probe: Probe) -> None:
        status, text = asyncio.run_coroutine_threadsafe(_send(client, probe), loop).result(30)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (probe, status, text)

    await loop.run_in_executor(None, probe_one)
    assert any(400 <= status < 500 for status in seen), seen
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"

    # Whatever the fuzzer stored, the inbox goes on: a whole call is applied as usual.
    await client.app[CALLS].inbox.drain()
    await replay(client, load("inbound_answered")[1:])
    async with any_db.session() as session:
        call = (await session.exec(select(Call).where(Call.callid.startswith("B10D0EB")))).one()  # type: ignore[union-attr]
        waiting = (
            await session.exec(select(CallEvent).where(CallEvent.processed_at.is_(None)))  # type: ignore[union-attr]
        ).all()
    assert (call.status, call.duration) == ("Success", 124)
    assert waiting == []
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"duration": "99999999999999999999"}, "duration"),
        ({"duration": "3000000000"}, "duration"),
        ({"rating": "99999999999999999999"}, "rating"),
        ({"wait": "-5"}, "wait"),
        ({"duration": "²"}, "duration"),
    ],
)
async def test_a_number_out_of_range_in_a_push_is_a_400_naming_the_field(
    fuzzed_app: AppClient, fields: dict[str, str], field_name: str
) -> None:
    history = {**load("inbound_answered")[-1], **fields, "crm_token": CRM_TOKEN}
    response = await fuzzed_app.post("/megafon_webhook", data=history)
    assert response.status == 400
    body = await response.json()
    assert (body["error"], body["field"]) == ("Invalid parameters", field_name)


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("application/json; charset=bogus", b"{}", 415, "'bogus' is not a known charset"),
        ("application/json", b"[" * 1000, 400, "JSON nested deeper than 32"),
        ("application/json", b'{"a": "\\ud800"}', 400, "text holds a NUL or an unpaired surrogate"),
        ("application/json", b'{"a": "\xff"}', 400, "body is not valid utf-8"),
        (FORM, b"cmd=%ff", 400, "a field is not valid in its charset"),
    ],
)  # fmt: skip
async def test_bad_bodies_get_a_clear_4xx_and_one_log_line(
    fuzzed_app: AppClient,
    caplog: pytest.LogCaptureFixture,
    content_type: str,
    body: bytes,
    status: int,
    detail: str,
) -> None:
    for path in ("/megafon_webhook", "/api/v1/leads", "/ct/v1/visit"):
        caplog.clear()
        response = await fuzzed_app.post(
            path,
            data=body,
            headers={
                "Content-Type": content_type,
                "Authorization": f"Bearer {API_TOKEN}",
                "Origin": SITE,
            },
        )
        if path != "/megafon_webhook" and content_type.startswith("application/x-www"):
            assert response.status == 400  # JSON is expected there: the same refusal
            continue
        assert response.status == status, path
        assert (await response.json())["detail"] == detail
        lines = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
        assert len(lines) == 1 and lines[0].exc_info is None


async def test_ids_beyond_the_columns_are_not_found(fuzzed_app: AppClient) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    for path in (
        "/api/v1/calls/9223372036854775808",
        "/api/v1/calls/2147483648",
        "/api/v1/clients/18446744073709551616",
        "/api/v1/clients/9223372036854775808/dialog",
    ):
        response = await fuzzed_app.get(path, headers=headers)
        assert response.status == 404, path
    for manager_id in (2**63, 2**31, -(2**63), 0):
        body = {"client_phone": "79161234567", "manager_id": manager_id}
        response = await fuzzed_app.post("/api/v1/calls", json=body, headers=headers)
        assert response.status == 404, manager_id
