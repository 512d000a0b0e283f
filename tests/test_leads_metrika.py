"""Calls reach the fake Metrika as batched upload_calls CSVs; 429s are retried; statuses polled."""

from __future__ import annotations

from typing import Any

from storage.db import Database
from storage.leads_models import MetrikaUpload
from storage.models import CallAttribution
from tests.conftest import API_TOKEN
from tests.fakes.metrika import COUNTER, TOKEN
from tests.leads_harness import Harness, HarnessFactory
from tests.megafon_replay import load, replay

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RECORD = (
    "https://vats123456.megapbx.ru/api/v2/call-records/record/2017-07-03/"
    "5c0e1e0a-1c2b-4d3e-9f00-0a1b2c3d4e5f/79101234567.mp3"
)


async def call_with_attribution(h: Harness, pushes: list[dict[str, str]], **fields: Any) -> None:
    """Replay a call, attributing it (as call tracking would) before its history arrives."""
    await replay(h.client, pushes[:-1])
    phone = pushes[-1]["phone"]
    listing = await (await h.client.get(f"/api/v1/calls?phone={phone}", headers=AUTH)).json()
    call_id = next(c["id"] for c in listing["calls"] if c["callid"] == pushes[-1]["callid"])
    if fields:
        async with h.db.session() as session:
            session.add(CallAttribution(call_id=call_id, **fields))
    await replay(h.client, pushes[-1:])


async def test_one_upload_per_visitor_id_type_with_the_exact_csv(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db, '[leads.metrika]\ntag = "{utmSource}/{utmMedium}"\n')
    await call_with_attribution(
        h,
        load("inbound_answered"),
        metrika_client_id="1699999999123456789",
        utm_source="yandex",
        utm_medium="cpc",
        landing_url="https://city2city.ru/dlya-biznesa?utm_source=yandex",
    )
    await call_with_attribution(h, load("inbound_missed"), yclid="8123456789012345678")
    unattributed = [
        {**p, "phone": "79035550011", "callid": "NO-VISIT"} for p in load("inbound_missed")
    ]
    await call_with_attribution(h, unattributed)

    assert h.leads.metrika is not None
    assert await h.leads.metrika.upload_due() == 2
    client_ids, yclids = h.metrika.uploads
    assert client_ids.query == {
        "client_id_type": "CLIENT_ID",
        "comment": "trubka",
        "new_goal_name": "Звонок",
    }
    assert client_ids.headers["Authorization"] == f"OAuth {TOKEN}"
    assert client_ids.filename == "calls.csv"
    assert client_ids.csv == (
        "ClientId,DateTime,PhoneNumber,TalkDuration,HoldDuration,CallMissed,Tag,"
        "FirstTimeCaller,URL,CallTrackerURL\n"
        "1699999999123456789,1499083870,+79101234567,124,0,0,yandex/cpc,1,"
        f"https://city2city.ru/dlya-biznesa?utm_source=yandex,{RECORD}\n"
    )
    assert yclids.query["client_id_type"] == "YCLID"
    assert yclids.csv == (
        "Yclid,DateTime,PhoneNumber,TalkDuration,HoldDuration,CallMissed,Tag,"
        "FirstTimeCaller,URL,CallTrackerURL\n"
        "8123456789012345678,1733127300,+79169998877,0,17,1,/,1,,\n"
    )
    metrics = await h.metrics_text()
    assert 'trubka_metrika_calls_skipped_total{reason="no_visitor_id"} 1.0' in metrics
    assert 'trubka_metrika_uploads_total{client_id_type="CLIENT_ID",outcome="ok"} 1.0' in metrics
    assert [r.status for r in await h.rows("metrika")] == ["done", "done"]
    assert await h.leads.metrika.upload_due() == 0  # nothing twice
    assert len(h.metrika.uploads) == 2


async def test_metrika_429_is_retried_later_and_uploaded_once(
    make_harness: HarnessFactory, any_db: Database
) -> None:
    h = await make_harness(any_db)
    batcher = h.leads.metrika
    assert batcher is not None
    h.metrika.fail_next(429)
    await call_with_attribution(h, load("inbound_answered"), metrika_client_id="42")

    assert await batcher.upload_due() == 0
    [row] = await h.rows("metrika")
    assert row.status == "pending" and "HTTP 429" in (row.last_error or "")
    assert "quota_requests_by_uid" in (row.last_error or "")
    # The 429 asks for at least a minute's pause.
    assert (row.next_attempt_at - h.clock.now()).total_seconds() >= 60
    h.clock.advance(30)
    assert await batcher.upload_due() == 0
    h.clock.advance(31)
    assert await batcher.upload_due() == 1
    assert len(h.metrika.uploads) == 2  # the refused one and the accepted one
    h.clock.advance(3600)
    assert await batcher.upload_due() == 0
    assert 'trubka_metrika_uploads_total{client_id_type="CLIENT_ID",outcome="failed"} 1.0' in (
        await h.metrics_text()
    )


async def test_uploading_status_is_polled_and_linkage_failure_surfaced(
    make_harness: HarnessFactory, db: Database
) -> None:
    h = await make_harness(db)
    batcher = h.leads.metrika
    assert batcher is not None
    await call_with_attribution(h, load("inbound_answered"), metrika_client_id="42")
    await batcher.upload_due()
    [uploading_id] = list(h.metrika.statuses)
    h.metrika.statuses[uploading_id] = "MATCHED"
    assert [u.status for u in await batcher.poll_statuses()] == ["MATCHED"]
    h.metrika.statuses[uploading_id] = "LINKAGE_FAILURE"
    assert [u.status for u in await batcher.poll_statuses()] == ["LINKAGE_FAILURE"]
    assert await batcher.poll_statuses() == []  # final: no more polling
    assert h.metrika.status_requests == [uploading_id, uploading_id]
    async with db.session() as session:
        stored = await session.get(MetrikaUpload, 1)
    assert stored is not None and stored.status == "LINKAGE_FAILURE" and stored.line_count == 1
    assert 'trubka_metrika_uploading_status_total{status="LINKAGE_FAILURE"} 1.0' in (
        await h.metrics_text()
    )


async def test_only_lead_calls_when_configured(make_harness: HarnessFactory, db: Database) -> None:
    h = await make_harness(db, '[leads.metrika]\ncalls = "leads"\n')
    await call_with_attribution(h, load("inbound_answered"), metrika_client_id="1")
    again = [{**p, "callid": "AGAIN"} for p in load("inbound_answered")]
    await call_with_attribution(h, again, metrika_client_id="2")  # not first-time: no lead
    batcher = h.leads.metrika
    assert batcher is not None
    assert await batcher.upload_due() == 1
    assert h.metrika.uploads[0].csv.splitlines()[1].startswith("1,")
    assert COUNTER == 36995060
