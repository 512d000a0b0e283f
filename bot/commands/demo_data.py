"""Demo data: a realistic stretch of a company's life, generated deterministically (one seed).

Site visits come through tracking pools (leases with history, an afternoon peak, some visitors
shown the static number when a pool is full); some visitors call while the page is open,
some after leaving; other callers find the number elsewhere. Managers answer most calls in
working hours, call back many missed ones (sooner or later), clients sometimes call again.
First-time callers become leads, site forms too; their deliveries to Roistat and Metrika are
mostly done, a few pending or dead. `trubka demo` fills a week; bench/reports.py a year.
Rows are written with bulk Core inserts: a year of a 50-manager company takes a minute or two.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, func, insert, select, text

from storage.db import Database
from storage.leads_models import Lead, OutboxItem
from storage.models import Call, CallAttribution, Client, Manager, PhoneIndexEntry
from storage.tracking_models import TrackingLease, TrackingNumber, TrackingVisit
from telephony.calls.outcome import CallStatus
from telephony.reports.rollup import PoolHourRollup
from telephony.tracking.confidence import judge

# Relative traffic per local hour: quiet nights, a late-morning and afternoon peak.
HOURLY = (1, 1, 1, 1, 1, 2, 4, 8, 14, 20, 22, 22, 20, 21, 22, 21, 19, 16, 12, 9, 7, 5, 3, 2)
GRACE = timedelta(seconds=1800)
IDLE = timedelta(seconds=60)
OPEN_HOUR, CLOSE_HOUR = 9, 19
NAMES = (
    "Анна Смирнова", "Иван Петров", "Мария Кузнецова", "Олег Соколов", "Елена Попова",
    "Дмитрий Лебедев", "Ольга Козлова", "Сергей Новиков", "Татьяна Морозова", "Алексей Волков",
)
ERRORS = {
    "roistat": ("HTTP 401: Roistat: неверный ключ интеграции", "timeout after 10 s"),
    "metrika": ("HTTP 403: Metrika: access denied for the token", "timeout after 30 s"),
}


@dataclass(frozen=True)
class DemoPool:
    name: str
    source: str
    numbers: tuple[str, ...]
    static_number: str | None
    share: float  # of the site's visits
    utm: tuple[tuple[str | None, str | None, str | None], ...]  # source, medium, campaign
    landings: tuple[str, ...]


DEMO_POOLS = (
    DemoPool(
        "direct", "Яндекс.Директ",
        tuple(f"74950000{n:03d}" for n in range(1, 9)), "74950000099", 0.5,
        (("yandex", "cpc", "spring-sale"), ("yandex", "cpc", "brand"), ("yandex", "cpc", "rsya")),
        ("/", "/sale", "/catalog/sofas"),
    ),
    DemoPool(
        "search", "Органический поиск", tuple(f"74950000{n:03d}" for n in range(11, 23)), None,
        0.3, ((None, None, None),), ("/", "/blog/how-to-choose", "/catalog/beds"),
    ),
    DemoPool(
        "other", "Прямой и остальные", tuple(f"74950000{n:03d}" for n in range(31, 41)), None, 0.2,
        ((None, None, None), ("vk", "social", "vk-feed")), ("/", "/contacts"),
    ),
)


@dataclass(frozen=True)
class DemoShape:
    days: int = 7
    managers: int = 8
    visits_per_day: int = 900
    call_share: float = 0.07  # visitors who call
    offline_calls_per_day: int = 35  # callers who found the number elsewhere (not tracked)
    forms_per_day: int = 12
    seed: int = 13


@dataclass
class _Lease:
    visit_id: str | None
    ends_at: datetime
    started_at: datetime
    counts_until: datetime


@dataclass
class _Built:
    managers: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    phones: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    leases: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    leads: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


class _Generator:
    def __init__(self, shape: DemoShape, zone: ZoneInfo, now: datetime,
                 pools: Sequence[DemoPool]) -> None:
        self.shape, self.zone, self.now, self.pools = shape, zone, now, pools
        self.rng = random.Random(shape.seed)
        self.out = _Built()
        self.client_of: dict[str, int] = {}
        self.known_phones: list[str] = []
        self.leases_of: dict[str, list[_Lease]] = defaultdict(list)
        self.logins: list[str] = []
        self.visits_by_id: dict[str, dict[str, Any]] = {}

    # --- people -------------------------------------------------------------------------------
    def managers(self) -> None:
        for index in range(self.shape.managers):
            name = NAMES[index % len(NAMES)] + ("" if index < len(NAMES) else f" {index + 1}")
            login = f"m{index + 1:02d}@vats100500.megapbx.ru"
            self.logins.append(login)
            self.out.managers.append({
                "id": index + 1, "name": name, "pbx_login": login, "pbx_ext": f"{101 + index}",
                "call_mode": "api", "call_provider": "megafon",
                "created_at": self.now - timedelta(days=self.shape.days + 30),
            })

    def phone(self, returning: float) -> str:
        if self.known_phones and self.rng.random() < returning:
            return self.rng.choice(self.known_phones)
        while True:
            phone = f"79{self.rng.randrange(10**9):09d}"
            if phone not in self.client_of:
                break
        client_id = len(self.out.clients) + 1
        self.client_of[phone] = client_id
        self.known_phones.append(phone)
        self.out.clients.append({
            "id": client_id, "name": "", "phone": phone, "channel": "telephony",
            "created_at": self.now, "updated_at": self.now,
        })
        self.out.phones.append({"phone": phone, "client_id": client_id, "variable": ""})
        return phone

    # --- time ---------------------------------------------------------------------------------
    def moments(self, day_start: datetime, count: float) -> list[datetime]:
        """`count` moments of one local day spread by the hourly profile (never in the future)."""
        weight = sum(HOURLY)
        moments: list[datetime] = []
        for hour, share in enumerate(HOURLY):
            expected = count * share / weight
            n = int(expected) + (self.rng.random() < expected - int(expected))
            for _ in range(n):
                moment = day_start + timedelta(hours=hour, seconds=self.rng.uniform(0, 3600))
                if moment < self.now:
                    moments.append(moment)
        return sorted(moments)

    def working(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return local.weekday() < 5 and OPEN_HOUR <= local.hour < CLOSE_HOUR

    def next_working(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        while not (local.weekday() < 5 and OPEN_HOUR <= local.hour < CLOSE_HOUR):
            local = datetime.combine(local.date() + timedelta(days=1), time(OPEN_HOUR),
                                     tzinfo=self.zone)
            local += timedelta(minutes=self.rng.uniform(0, 40))
        return local.astimezone(UTC)

    # --- site and pools -----------------------------------------------------------------------
    def numbers(self) -> None:
        for pool in self.pools:
            for number in pool.numbers:
                self.out.numbers.append({
                    "number": number, "pool": pool.name, "active": True, "lease_id": None,
                    "held_until": datetime(1970, 1, 1, tzinfo=UTC),
                })

    def site_day(self, day_start: datetime) -> list[tuple[datetime, str, dict[str, Any] | None]]:
        """Visits of a day through the pools; returns the calls they make (moment, number,
        visit)."""
        calls: list[tuple[datetime, str, dict[str, Any] | None]] = []
        for pool in self.pools:
            held: dict[str, datetime] = {
                n: datetime(1970, 1, 1, tzinfo=UTC) for n in pool.numbers
            }
            for moment in self.moments(day_start, self.shape.visits_per_day * pool.share):
                visit = self.visit(pool, moment)
                free = [n for n in pool.numbers if held[n] <= moment]
                calls_now = self.rng.random() < self.shape.call_share
                if not free:  # every number busy: the static number, no lease (overload)
                    if calls_now and pool.static_number:
                        calls.append((moment + timedelta(minutes=self.rng.uniform(1, 8)),
                                      pool.static_number, visit))
                    continue
                number = min(free, key=lambda n: (held[n], n))
                length = min(max(self.rng.lognormvariate(math.log(200), 1.0), 25), 14400)
                ends = moment + timedelta(seconds=length)
                held[number] = ends
                lease = _Lease(visit["id"], ends, moment, max(ends, ends - IDLE + GRACE))
                self.leases_of[number].append(lease)
                self.out.leases.append({
                    "id": len(self.out.leases) + 1, "number": number, "pool": pool.name,
                    "visit_id": visit["id"], "started_at": moment,
                    "last_ping_at": max(moment, ends - IDLE), "ends_at": ends,
                    "counts_until": lease.counts_until,
                })
                visit["last_seen_at"] = ends
                if calls_now:
                    if self.rng.random() < 0.75:  # while the page is open
                        at = moment + timedelta(seconds=length * self.rng.uniform(0.2, 0.95))
                    else:  # after leaving: sometimes beyond the grace
                        at = ends + timedelta(minutes=self.rng.expovariate(1 / 12))
                    calls.append((at, number, visit))
        return calls

    def visit(self, pool: DemoPool, moment: datetime) -> dict[str, Any]:
        utm_source, utm_medium, utm_campaign = self.rng.choice(pool.utm)
        landing = "https://divan.example" + self.rng.choice(pool.landings)
        visit: dict[str, Any] = {
            "id": f"{self.rng.getrandbits(128):032x}", "pool": pool.name, "source": pool.source,
            "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
            "metrika_client_id": str(1_700_000_000_000 + self.rng.randrange(10**9)),
            "landing_url": landing, "last_url": landing,
            "referrer": "https://yandex.ru/" if pool.name != "other" else None,
            "device": self.rng.choice(("mobile", "mobile", "desktop")),
            "created_at": moment, "last_seen_at": moment,
        }
        self.out.visits.append(visit)
        self.visits_by_id[visit["id"]] = visit
        return visit

    # --- calls --------------------------------------------------------------------------------
    def call(self, moment: datetime, phone: str, direction: str, *, answered: bool,
             manager: str | None, diversion: str | None = None) -> dict[str, Any]:
        call_id = len(self.out.calls) + 1
        talk = int(self.rng.lognormvariate(math.log(120), 0.8)) if answered else 0
        wait = int(self.rng.uniform(3, 25 if answered else 50))
        # Consistent with CallOutcome: a conversation is a Success (and its ACCEPTED flag).
        status = CallStatus.SUCCESS if answered else (
            CallStatus.MISSED if direction == "in" else CallStatus.NOT_AVAILABLE
        )
        if not answered and direction == "in" and self.rng.random() < 0.3:
            status = CallStatus.CANCEL
        row = {
            "id": call_id, "provider": "megafon" if self.rng.random() < 0.85 else "novofon",
            "callid": f"demo-{call_id}", "direction": direction,
            "client_id": self.client_of[phone], "phone": phone, "internal": False,
            "status": status, "answered": answered, "ended": True, "last_event": "COMPLETED",
            "manager_user": manager, "manager_ext": None, "diversion": diversion,
            "started_at": moment, "duration": talk + wait, "wait": wait,
            "record_link": f"https://records.example/{call_id}.mp3" if answered else None,
            "requested": False, "awaiting_pbx": False, "first_time_caller": None,
            "targeted": talk >= 30 if direction == "in" else None,
            "created_at": moment, "updated_at": moment + timedelta(seconds=talk + wait),
        }
        self.out.calls.append(row)
        return row

    def inbound(self, moment: datetime, phone: str, diversion: str | None) -> dict[str, Any]:
        chance = 0.88 if self.working(moment) else 0.55
        answered = self.rng.random() < chance
        manager = self.rng.choice(self.logins) if answered else None
        row = self.call(moment, phone, "in", answered=answered, manager=manager,
                        diversion=diversion)
        if not answered:
            self.after_missed(row)
        return row

    def after_missed(self, missed: dict[str, Any]) -> None:
        roll, start, phone = self.rng.random(), missed["started_at"], missed["phone"]
        if roll < 0.5:  # a manager calls back: mostly soon, some the next day
            pick = self.rng.random()
            if pick < 0.55:
                delay = timedelta(minutes=self.rng.uniform(2, 14))
            elif pick < 0.9:
                delay = timedelta(minutes=self.rng.lognormvariate(math.log(90), 0.9))
            else:
                delay = timedelta(hours=self.rng.uniform(25, 50))
            at = self.next_working(start + delay)
            if at < self.now:
                self.call(at, phone, "out", answered=self.rng.random() < 0.7,
                          manager=self.rng.choice(self.logins))
        elif roll < 0.68:  # the client tries again
            at = start + timedelta(minutes=self.rng.uniform(5, 180))
            if at < self.now:
                chance = 0.88 if self.working(at) else 0.55
                answered = self.rng.random() < chance
                self.call(at, phone, "in", answered=answered,
                          manager=self.rng.choice(self.logins) if answered else None)

    def tracked_call(self, moment: datetime, number: str, visit: dict[str, Any] | None,
                     static: bool) -> None:
        if moment >= self.now:
            return
        phone = self.phone(returning=0.1)
        row = self.inbound(moment, phone, number)
        candidates = [
            lease for lease in reversed(self.leases_of.get(number, []))
            if lease.started_at <= moment <= lease.counts_until
        ][:5]
        judged = judge(candidates, moment, static=static)
        chosen = None
        if judged.visit_id is not None:
            chosen = visit if visit is not None and visit["id"] == judged.visit_id else None
            chosen = chosen or self.visits_by_id.get(judged.visit_id)
        pool = next(p for p in self.pools if number in p.numbers or number == p.static_number)
        values: dict[str, Any] = {
            "call_id": row["id"], "method": "tracking", "tracking_number": number,
            "channel_level": chosen is None, "source": pool.source, "created_at": moment,
            "visit_id": None, "utm_source": None, "utm_medium": None, "utm_campaign": None,
            "utm_content": None, "utm_term": None, "yclid": None, "metrika_client_id": None,
            "roistat_visit": None, "ga_client_id": None, "landing_url": None, "referrer": None,
            **judged.columns(),
        }
        if chosen is not None:
            values.update({
                key: chosen[key] for key in (
                    "utm_source", "utm_medium", "utm_campaign", "metrika_client_id",
                    "landing_url", "referrer",
                )
            }, visit_id=chosen["id"])
        self.out.attributions.append(values)

    # --- leads --------------------------------------------------------------------------------
    def leads(self) -> None:
        seen: set[str] = set()
        for row in sorted(self.out.calls, key=lambda r: (r["started_at"], r["id"])):
            if row["direction"] != "in":
                continue
            first = row["phone"] not in seen
            seen.add(row["phone"])
            row["first_time_caller"] = first
            if first:
                self.lead("call", row["started_at"] + timedelta(seconds=row["duration"]),
                          row["phone"], row["id"])
        for day in range(self.shape.days):
            day_start = self.day_start(day)
            for moment in self.moments(day_start, self.shape.forms_per_day):
                self.lead("form", moment, self.phone(returning=0.05), None)

    def lead(self, source: str, moment: datetime, phone: str, call_id: int | None) -> None:
        lead_id = len(self.out.leads) + 1
        self.out.leads.append({
            "id": lead_id, "source": source, "call_id": call_id,
            "client_id": self.client_of[phone], "phone": phone, "created_at": moment,
            "name": self.rng.choice(("Анна", "Павел", "Ирина", "")) if source == "form" else None,
        })
        sinks = ("roistat", "metrika") if source == "call" else ("roistat",)
        for sink in sinks:
            roll = self.rng.random()
            age = self.now - moment
            status, attempts = "done", 1
            error: str | None = None
            delivered: datetime | None = moment + timedelta(seconds=2)
            if roll < 0.01:
                status, attempts, error, delivered = "dead", 14, self.rng.choice(ERRORS[sink]), None
            elif age < timedelta(hours=2) and roll < 0.3:
                status, attempts, delivered = "pending", 0, None
            elif roll < 0.02:
                status, attempts, error, delivered = "pending", 3, "HTTP 503", None
            self.out.outbox.append({
                "id": len(self.out.outbox) + 1, "sink": sink, "key": f"{sink}:{lead_id}",
                "lead_id": lead_id, "call_id": call_id, "payload": "{}", "status": status,
                "attempts": attempts, "next_attempt_at": moment,
                "give_up_at": moment + timedelta(hours=48), "last_error": error,
                "created_at": moment, "delivered_at": delivered,
            })

    # --- the whole stretch --------------------------------------------------------------------
    def day_start(self, day: int) -> datetime:
        today = self.now.astimezone(self.zone).date()
        first = today - timedelta(days=self.shape.days - 1)
        return datetime.combine(first + timedelta(days=day), time(), tzinfo=self.zone)

    def build(self) -> _Built:
        self.managers()
        self.numbers()
        for day in range(self.shape.days):
            day_start = self.day_start(day)
            for moment, number, visit in self.site_day(day_start):
                static = any(number == pool.static_number for pool in self.pools)
                self.tracked_call(moment, number, visit, static)
            for moment in self.moments(day_start, self.shape.offline_calls_per_day):
                self.inbound(moment, self.phone(returning=0.3), None)
        self.leads()
        for row in self.out.numbers:
            leases = self.leases_of.get(row["number"])
            if leases:
                row["held_until"] = max(lease.ends_at for lease in leases)
        return self.out


async def is_empty(db: Database) -> bool:
    async with db.engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(Call))).scalar_one()
    return int(count) == 0


async def fill(
    db: Database,
    zone: ZoneInfo,
    shape: DemoShape = DemoShape(),
    now: datetime | None = None,
    pools: Sequence[DemoPool] = DEMO_POOLS,
    chunk: int = 5000,
) -> dict[str, int]:
    """Write the generated rows into an empty database, then roll up its closed hours (as the
    worker of `trubka serve` would); returns how many rows of each table."""
    now = now or datetime.now(UTC)
    built = _Generator(shape, zone, now, pools).build()
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Manager, built.managers),
        (Client, built.clients),
        (PhoneIndexEntry, built.phones),
        (TrackingNumber, built.numbers),
        (TrackingVisit, built.visits),
        (TrackingLease, built.leases),
        (Call, built.calls),
        (CallAttribution, built.attributions),
        (Lead, built.leads),
        (OutboxItem, built.outbox),
    ]
    async with db.engine.begin() as connection:
        for model, rows in tables:
            table = model.__table__
            for start in range(0, len(rows), chunk):
                await connection.execute(insert(table), rows[start : start + chunk])
        if db.dialect == "postgresql":
            # Ids were given explicitly: move the sequences past them.
            for model, _rows in tables:
                table = model.__table__
                if "id" in table.c and isinstance(table.c.id.type, Integer):
                    await connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                    ))
        # Fresh statistics: the planner would otherwise take the bulk-filled tables as empty
        # (autovacuum catches up later; a report asked right away would scan).
        for model, _rows in tables:
            await connection.execute(text(f"ANALYZE {model.__tablename__}"))
    await PoolHourRollup(db, now=lambda: now).catch_up()
    return {model.__tablename__: len(rows) for model, rows in tables}
