"""The app with the leads room on a fake clock, fake Roistat and fake Metrika over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import build_app
from bot.leads import LEADS, Leads
from storage.db import Database
from storage.leads_models import Lead, OutboxItem
from telephony.infra.clock import FakeClock
from tests.conftest import test_settings
from tests.fakes import metrika as metrika_fake
from tests.fakes import roistat as roistat_fake
from tests.fakes.megafon import FakePbx
from tests.fakes.metrika import FakeMetrika
from tests.fakes.roistat import FakeRoistat

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
Client = TestClient[web.Request, web.Application]


@dataclass
class Harness:
    client: Client
    leads: Leads
    clock: FakeClock
    roistat: FakeRoistat
    metrika: FakeMetrika
    db: Database

    async def drain(self) -> int:
        return await self.leads.worker.drain()

    async def rows(self, sink: str | None = None) -> list[OutboxItem]:
        async with self.db.session() as session:
            query = select(OutboxItem).order_by(OutboxItem.id)  # type: ignore[arg-type]
            if sink is not None:
                query = query.where(OutboxItem.sink == sink)
            return list((await session.exec(query)).all())

    async def leads_rows(self) -> list[Lead]:
        async with self.db.session() as session:
            return list((await session.exec(select(Lead).order_by(Lead.id))).all())  # type: ignore[arg-type]

    async def metrics_text(self) -> str:
        response = await self.client.get("/metrics")
        return await response.text()


HarnessFactory = Callable[..., Awaitable[Harness]]


async def _serve(app: web.Application) -> tuple[TestServer, str]:
    server = TestServer(app)
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fake_roistat() -> AsyncIterator[FakeRoistat]:
    fake = FakeRoistat()
    server, fake.url = await _serve(fake.app())
    yield fake
    await server.close()


@pytest.fixture
async def fake_metrika() -> AsyncIterator[FakeMetrika]:
    fake = FakeMetrika()
    server, fake.url = await _serve(fake.app())
    yield fake
    await server.close()


@pytest.fixture
async def make_harness(
    fake_roistat: FakeRoistat,
    fake_metrika: FakeMetrika,
    fake_pbx: FakePbx,
    tmp_path: Path,
    app_clients: list[Client],
) -> HarnessFactory:
    """`toml` is appended to a `[leads]` section (workers off: tests drive them on a fake clock).

    The apps are closed before their database (conftest's `app_clients`): their workers use it.
    """
    clients = app_clients

    async def factory(
        db: Database, toml: str = "", *, workers: bool = False, **overrides: Any
    ) -> Harness:
        config = tmp_path / f"trubka{len(clients)}.toml"
        config.write_text(f"[leads]\nworkers = {str(workers).lower()}\n{toml}\n", encoding="utf-8")
        values: dict[str, Any] = {
            "config": str(config),
            "megafon_url": fake_pbx.url,
            "roistat_url": fake_roistat.url,
            "roistat_key": roistat_fake.KEY,
            "metrika_url": fake_metrika.url,
            "metrika_token": metrika_fake.TOKEN,
            "metrika_counter_id": metrika_fake.COUNTER,
        }
        values.update(overrides)
        clock = FakeClock(START)
        app = await build_app(test_settings(**values), db=db, migrate=False, clock=clock)
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Harness(client, app[LEADS], clock, fake_roistat, fake_metrika, db)

    return factory
