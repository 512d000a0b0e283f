"""Fixtures: migrated databases (SQLite and PostgreSQL), the app over real HTTP, fake upstreams.

PostgreSQL is the local server (TRUBKA_TEST_POSTGRES_URL, default the `test` database on
127.0.0.1). Each test run makes its own database, so parallel runs do not meet. CI sets
TRUBKA_TEST_REQUIRE_POSTGRES=1: there an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlmodel import SQLModel

import storage.schema  # noqa: F401  (every table on the metadata)
from bot.app import build_app
from bot.roles import Role
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from telephony.infra import transaction_guard
from telephony.infra.clock import Clock, SkippingClock
from tests.fakes.megafon import FakePbx
from tests.fakes.novofon import FakeNovofon
from tests.fakes.telegram import FakeTelegram, Limits
from tests.postgres_admin import create_database, drop_database

# Fixtures of the leads room (fake Roistat and Metrika, the app on a fake clock).
pytest_plugins = ["tests.leads_harness"]

# Generated inputs are checked for what they prove, not for speed: CI machines are shared.
hypothesis_settings.register_profile(
    "trubka", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("trubka")

POSTGRES_URL = os.environ.get(
    "TRUBKA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("TRUBKA_TEST_REQUIRE_POSTGRES") == "1" or bool(
    os.environ.get("CI")
)
CRM_TOKEN = "test-crm-token"
TELEGRAM_SCALE = 0.01
API_TOKEN = "test-api-token"


@pytest.fixture(autouse=True)
def _no_network_inside_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The house rule holds in every test: an upstream request (PBX, Telegram, Roistat,
    Metrika, Novofon) started while a database session is open fails the test."""
    monkeypatch.setattr(transaction_guard, "STRICT", True)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the settings they give, not the developer's TRUBKA_* variables, nor the
    `./trubka.toml`, `./.env` and `./scenarios.yaml` of the folder `make test` runs in: each
    test (and each `trubka` it starts) runs in its own empty folder."""
    for name in list(os.environ):
        if name.startswith("TRUBKA_") and not name.startswith("TRUBKA_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _run_blocking(factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion on its own loop in a thread.

    Session fixtures are first requested from inside a test's running loop, where asyncio.run()
    is not allowed.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


async def _create_postgres_database(name: str) -> str:
    url = await create_database(POSTGRES_URL, name)
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"trubka_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        url = _run_blocking(lambda: _create_postgres_database(name))
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable ({exc}); set TRUBKA_TEST_REQUIRE_POSTGRES=1 to fail")
    yield url
    _run_blocking(lambda: drop_database(POSTGRES_URL, name))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        await db.dispose()

    _run_blocking(migrate)
    return path


async def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    async with db.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


async def _open(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Database:
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        db = Database(url)
        await _truncate_all(db)
        return db
    path = tmp_path / "trubka.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    return Database(f"sqlite+aiosqlite:///{path}")


AppClient = TestClient[web.Request, web.Application]


@pytest.fixture
async def app_clients() -> AsyncIterator[list[AppClient]]:
    """Apps under test; closed before their database goes away (their workers use it)."""
    clients: list[AppClient] = []
    yield clients
    await _close_all(clients)


async def _close_all(clients: list[AppClient]) -> None:
    while clients:
        await clients.pop().close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db(
    request: pytest.FixtureRequest, tmp_path: Path, app_clients: list[AppClient]
) -> AsyncIterator[Database]:
    """A migrated, empty database: the test runs once on SQLite and once on PostgreSQL."""
    db = await _open(request, request.param, tmp_path)
    yield db
    await _close_all(app_clients)
    await db.dispose()


@pytest.fixture
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, app_clients: list[AppClient]
) -> AsyncIterator[Database]:
    """A migrated, empty SQLite database, for tests that do not depend on the backend."""
    database = await _open(request, "sqlite", tmp_path)
    yield database
    await _close_all(app_clients)
    await database.dispose()


@pytest.fixture
async def fake_pbx() -> AsyncIterator[FakePbx]:
    pbx = FakePbx()
    server = TestServer(pbx.app())
    await server.start_server()
    pbx.url = str(server.make_url("")).rstrip("/")
    yield pbx
    await server.close()


@pytest.fixture
async def fake_novofon() -> AsyncIterator[FakeNovofon]:
    novofon = FakeNovofon()
    server = TestServer(novofon.app())
    await server.start_server()
    novofon.url = str(server.make_url("")).rstrip("/")
    yield novofon
    await server.close()


def test_settings(**overrides: Any) -> Settings:
    """Settings for the app under test; nothing read from the environment or `.env`."""
    values: dict[str, Any] = {
        "api_token": API_TOKEN,
        "megafon_crm_token": CRM_TOKEN,
        "megafon_api_key": "test-pbx-key",
        "megafon_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


AppFactory = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def make_client(
    fake_pbx: FakePbx, app_clients: list[AppClient], skipping_clock: SkippingClock
) -> AppFactory:
    """Build the real app on a database and serve it over HTTP; settings may be overridden,
    and the role (`serve --role`) and the clocks chosen. Telegram's send scheduler runs on
    `skipping_clock` unless told otherwise (its waits take no time; the fake Bot API counts
    its limits on the same clock)."""

    async def factory(
        database: Database,
        *,
        role: Role = Role.ALL,
        clock: Clock | None = None,
        telegram_clock: Clock | None = None,
        **overrides: Any,
    ) -> AppClient:
        overrides.setdefault("megafon_url", fake_pbx.url)
        app = await build_app(
            test_settings(**overrides),
            db=database,
            migrate=False,
            role=role,
            clock=clock,
            telegram_clock=telegram_clock or skipping_clock,
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        app_clients.append(client)
        return client

    return factory


@pytest.fixture
async def client(make_client: AppFactory, any_db: Database) -> AppClient:
    """The app on SQLite and on PostgreSQL."""
    return await make_client(any_db)


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def skipping_clock() -> SkippingClock:
    """Real time that skips its waits: give it to the app (`make_client(..., clock=...)`) and
    the send scheduler's waits for budgets, 429s and backoffs take no time, while the fake Bot
    API (which counts its limits on the same clock) sees them pass."""
    return SkippingClock()


@pytest.fixture
async def fake_telegram(skipping_clock: SkippingClock) -> AsyncIterator[FakeTelegram]:
    """A fake Bot API server (tests/fakes/telegram.py) over real HTTP, enforcing Telegram's
    limits on windows 100 times shorter (a group's minute lasts 0.6 s), on `skipping_clock`."""
    telegram = FakeTelegram(limits=Limits(scale=TELEGRAM_SCALE), clock=skipping_clock)
    server = TestServer(telegram.app())
    await server.start_server()
    telegram.url = str(server.make_url("")).rstrip("/")
    yield telegram
    telegram.closing.set()
    await server.close()
