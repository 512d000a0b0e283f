"""The app with a scenario file, a fake clock, the fake PBX and the fake Bot API over HTTP."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import build_app
from bot.leads import LEADS
from bot.scenarios.wiring import SCENARIOS
from bot.telegram.wiring import TELEGRAM
from storage.db import Database
from storage.scenario_models import ScenarioJob
from telephony.events import LeadInfo
from telephony.infra.clock import FakeClock
from telephony.scenarios.engine import ScenarioEngine
from tests.conftest import API_TOKEN, AppClient, test_settings
from tests.fakes.megafon import FakePbx
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.megafon_replay import replay, settle
from tests.telegram_updates import ADMIN, CLIENT_USER, GROUP, feed, flush, message

MOSCOW = ZoneInfo("Europe/Moscow")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW)
FRIDAY_19 = datetime(2026, 11, 27, 19, 0, tzinfo=MOSCOW)
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=MOSCOW)
EXAMPLES = Path(__file__).parents[1] / "examples" / "scenarios.yaml"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
_files = itertools.count(1)


@dataclass
class Harness:
    client: AppClient
    clock: FakeClock
    pbx: FakePbx
    telegram: FakeTelegram

    @property
    def app(self) -> web.Application:
        return self.client.server.app

    @property
    def engine(self) -> ScenarioEngine:
        return self.app[SCENARIOS]

    async def tell_lead(self, lead: LeadInfo) -> None:
        """What the leads room does after storing a lead: tell the lead observers."""
        observers = self.app[LEADS].service.observers
        await observers.tell(lambda observer: observer.lead_created(lead))

    async def settle(self) -> None:
        """Pushes applied, due jobs run, Telegram sends out — until nothing moves."""
        for _ in range(3):
            await settle(self.client)
            ran = await self.engine.run_due()
            if TELEGRAM in self.app:
                await flush(self.app)
            if not ran:
                return

    async def advance(self, minutes: float) -> None:
        self.clock.advance(minutes * 60)
        await self.settle()

    async def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        await self.settle()

    async def replay(self, pushes: list[dict[str, str]]) -> None:
        await replay(self.client, pushes)
        await self.settle()

    async def feed(self, update: dict[str, Any]) -> None:
        await feed(self.app, update)
        await self.settle()

    async def share_phone(self, phone: str, name: str = "Ольга") -> None:
        contact = {"phone_number": phone, "first_name": name, "user_id": CLIENT_USER}
        await self.feed(message(CLIENT_USER, None, name=name, contact=contact))

    async def get(self, path: str) -> Any:
        response = await self.client.get(path, headers=AUTH)
        assert response.status == 200, await response.text()
        return await response.json()

    async def person(self, phone: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/clients?phone={phone}")
        return result

    async def dialog(self, client_id: int) -> list[str]:
        answer = await self.get(f"/api/v1/clients/{client_id}/dialog")
        return [line["text"] for line in answer["messages"]]

    def to_client(self) -> list[str]:
        return self.telegram.texts_in(CLIENT_USER, None)

    def in_group(self) -> list[str]:
        return [s.text or "" for s in self.telegram.sent if s.chat_id == GROUP]

    def makecalls(self) -> list[Any]:
        return [request.json for request in self.pbx.makecalls()]


async def jobs(db: Database) -> list[ScenarioJob]:
    async with db.session() as session:
        return list((await session.exec(select(ScenarioJob).order_by(col(ScenarioJob.id)))).all())


async def start_app(
    db: Database,
    tmp_path: Path,
    app_clients: list[AppClient],
    fake_pbx: FakePbx,
    fake_telegram: FakeTelegram,
    scenarios: str | Path,
    *,
    at: datetime = MONDAY_10,
    telegram: bool = True,
    clock: FakeClock | None = None,
    **overrides: Any,
) -> Harness:
    if isinstance(scenarios, str):
        path = tmp_path / f"scenarios-{next(_files)}.yaml"
        path.write_text(scenarios, encoding="utf-8")
    else:
        path = scenarios
    settings: dict[str, Any] = {"scenarios": str(path), "megafon_url": fake_pbx.url}
    if telegram:
        settings.update(
            telegram_token=TOKEN,
            telegram_api_url=fake_telegram.url,
            telegram_managers_chat_id=GROUP,
            telegram_admin_ids=str(ADMIN),
            telegram_group_interval=0,
            telegram_chat_interval=0,
        )
    settings.update(overrides)
    clock = clock or FakeClock(at.astimezone(ZoneInfo("UTC")))
    app = await build_app(test_settings(**settings), db=db, migrate=False, clock=clock)
    client = TestClient(TestServer(app))
    await client.start_server()
    app_clients.append(client)
    return Harness(client, clock, fake_pbx, fake_telegram)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)
