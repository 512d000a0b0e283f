"""Personal data: `trubka client export` shows everything held on a person; `trubka client
forget` (and `DELETE /api/v1/clients/{id}`) leaves no trace of the phone, name or texts in any
text column of any table, keeps the reports' totals, and the next call starts a new client.
`[retention]` blanks old personal fields in batches (on a fake clock)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import String, Text, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select

import storage.schema  # noqa: F401  (every table)
from bot.settings import ConfigurationError
from storage.channel_models import ChannelDelivery, ClientChannel
from storage.db import Database
from storage.models import Call, CallAttribution, Client, ClientVariable, DialogMessage
from storage.tracking_models import TrackingVisit
from storage.widget_models import CallbackRequest, WidgetCounter
from telephony.access import audit
from telephony.access.retention import RetentionConfig, RetentionSweep
from telephony.infra.clock import FakeClock
from tests import conftest
from tests.conftest import AppFactory
from tests.fakes.telegram import FakeTelegram
from tests.megafon_replay import load, replay
from tests.telegram_updates import flush, telegram_app_settings
from tests.test_access import cli_env
from tests.test_megafon_call import run_cli

AppClient = TestClient[web.Request, web.Application]
PHONE = "79101234567"
NAME = "Жанна Секретова"
SAID = "мой адрес Садовая 5"
IP, AGENT = "203.0.113.77", "SecretBrowser/9.9"
NEEDLES = (PHONE, PHONE[1:], "Секретова", "Садовая", IP, AGENT, "record/2017-07-03")


async def _text_hits(db: Database) -> list[str]:
    """Every text column of every table that holds any needle."""
    hits = []
    async with db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for column in columns:
                found = await connection.execute(
                    sa_select(func.count()).where(or_(*(column.contains(n) for n in NEEDLES)))
                )
                if found.scalar():
                    hits.append(f"{table.name}.{column.name}")
    return hits


async def _totals(client: AppClient, auth: dict[str, str]) -> list[Any]:
    today = date.today().isoformat()
    answers = []
    for path, period in (
        ("calls", {"from": "2017-07-01", "to": "2017-07-31"}),
        ("missed", {"from": "2017-07-01", "to": "2017-07-31"}),
        ("leads", {"from": today, "to": today}),
    ):
        response = await client.get(f"/api/v1/reports/{path}", params=period, headers=auth)
        assert response.status == 200
        answers.append(await response.json())
    return answers


async def test_forget_leaves_no_trace_keeps_the_totals_and_a_new_call_is_a_new_client(
    any_db: Database,
    make_client: AppFactory,
    fake_telegram: FakeTelegram,
    auth: dict[str, str],
) -> None:
    client = await make_client(
        any_db,
        **telegram_app_settings(fake_telegram.url),
    )
    app = client.server.app
    assert app is not None
    await replay(client, load("inbound_answered"))
    await flush(app)
    lead = await client.post(
        "/api/v1/leads",
        json={"phone": "8 910 123-45-67", "name": NAME, "comment": SAID},
        headers=auth,
    )
    assert lead.status == 201
    async with any_db.session() as session:
        person = (await session.exec(select(Client).where(col(Client.phone) == PHONE))).first()
        assert person is not None
        client_id = person.id
        person.name = NAME
        session.add(ClientVariable(client_id=client_id, name="address", value=SAID))
        session.add(DialogMessage(client_id=client_id, kind="message", direction="in", text=SAID))
        call = (await session.exec(select(Call))).first()
        session.add(
            TrackingVisit(id="v-secret", ip=IP, user_agent=AGENT, landing_url="/?n=Секретова")
        )
        await session.flush()
        session.add(CallAttribution(call_id=call.id, visit_id="v-secret"))
        # Reached by SMS and WhatsApp: identities by the phone, a message sent with the text.
        session.add(ClientChannel(client_id=client_id, kind="whatsapp", address=PHONE))
        # A "Перезвоните мне" from the site, and its per-phone budget.
        session.add(CallbackRequest(phone=PHONE, site="example.ru"))
        session.add(WidgetCounter(key=f"phone:{PHONE}", window_start=call.created_at, count=1))
        session.add(
            ChannelDelivery(
                delivery_id="d-secret", client_id=client_id, kind="sms", address=PHONE, text=SAID
            )
        )
    assert await _text_hits(any_db)  # the needles are there to be found
    before = await _totals(client, auth)

    env = cli_env(any_db)
    code, out, err = await run_cli(env, "client", "export", "+7 (910) 123-45-67")
    assert code == 0, err
    held = json.loads(out)
    assert held["clients"][0]["name"] == NAME and held["calls"][0]["record_link"]
    assert any(v["value"] == SAID for v in held["variables"])
    assert held["visits"][0]["ip"] == IP
    assert any(found["comment"] == SAID for found in held["leads"])

    code, out, err = await run_cli(env, "client", "forget", "89101234567")
    assert code == 0, err
    assert await _text_hits(any_db) == []
    assert await _totals(client, auth) == before
    rows = await audit.entries(any_db)
    assert [(r.action, r.object) for r in rows] == [("client.forget", f"client:{client_id}")]
    assert rows[0].actor.startswith("cli:")
    # The topic is renamed through the send queue: its title no longer names the person.
    await flush(app)
    renamed = fake_telegram.called("editForumTopic")
    assert renamed and renamed[-1].params["name"] == f"Клиент #{client_id}"
    # The next call from that number starts a new client.
    await replay(client, [{**push, "phone": PHONE} for push in load("inbound_missed")])
    found = await client.get(f"/api/v1/clients?phone={PHONE}", headers=auth)
    assert found.status == 200 and (await found.json())["id"] != client_id
    code, _, _ = await run_cli(env, "client", "forget", "+7 999 000-00-01")  # nothing held
    assert code == 1


async def test_forget_over_the_api(
    make_client: AppFactory, db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(db)
    await replay(client, load("inbound_answered"))
    person = await (await client.get(f"/api/v1/clients?phone={PHONE}", headers=auth)).json()
    response = await client.delete(f"/api/v1/clients/{person['id']}", headers=auth)
    assert response.status == 200
    assert (await response.json())["erased"]["calls"] == 1
    assert (await client.get(f"/api/v1/clients?phone={PHONE}", headers=auth)).status == 404
    again = await client.delete("/api/v1/clients/999999", headers=auth)
    assert again.status == 404


async def test_retention_blanks_old_personal_data_in_batches(any_db: Database) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FakeClock(start)
    async with any_db.session() as session:
        person = Client(name="x", phone=PHONE)
        session.add(person)
        await session.flush()
        assert person.id is not None
        for day in range(5):
            at = start + timedelta(days=day)
            session.add(
                DialogMessage(client_id=person.id, kind="message", text=SAID, created_at=at)
            )
            session.add(Call(phone=PHONE, record_link=f"https://x/{day}.mp3", created_at=at))
            session.add(TrackingVisit(id=f"v{day}", ip=IP, user_agent=AGENT, created_at=at))
    await audit.write(any_db, audit.Actor("test"), "token.create", now=start)
    config = RetentionConfig(
        dialog_days=30, visits_days=10, recordings_days=20, audit_days=60, batch=2
    )
    sweep = RetentionSweep(any_db, config, clock)
    assert await sweep.run_all() == 0  # nothing is old yet

    clock.set(start + timedelta(days=12))  # visits of days 0-1 are past 10 days
    assert await sweep.step() == 0  # a full batch: more may wait
    assert await sweep.step() is None
    async with any_db.read() as session:
        visits = (await session.exec(select(TrackingVisit).order_by(col(TrackingVisit.id)))).all()
        assert [v.ip for v in visits] == [None, None, IP, IP, IP]
        calls = (await session.exec(select(Call.record_link))).all()
        assert all(calls)

    clock.set(start + timedelta(days=100))  # everything is past every limit
    assert await sweep.run_all() == 5 + 3 + 5 + 1
    async with any_db.read() as session:
        texts = (await session.exec(select(DialogMessage.text))).all()
        assert set(texts) == {""}
        links = (await session.exec(select(Call.record_link))).all()
        assert set(links) == {None}
        assert len((await session.exec(select(Call))).all()) == 5
    assert await audit.entries(any_db) == []


def test_a_wrong_retention_section_names_the_key(tmp_path: Any) -> None:
    from bot.access import retention_config

    (tmp_path / "trubka.toml").write_text("[retention]\ndialog_days = 0\n", encoding="utf-8")
    settings = conftest.test_settings(config=str(tmp_path / "trubka.toml"))
    try:
        retention_config(settings)
    except ConfigurationError as exc:
        assert "retention.dialog_days" in str(exc)
    else:
        raise AssertionError("dialog_days = 0 was accepted")
