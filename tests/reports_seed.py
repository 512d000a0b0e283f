"""A small hand-made stretch of two days (Mon 2 and Tue 3 November 2026, Moscow time) whose
report figures are worked out by hand in tests/test_reports.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from storage.db import Database
from storage.leads_models import Lead, OutboxItem
from storage.models import Call, CallAttribution, Client, Manager
from storage.telegram_models import TelegramDelivery
from storage.tracking_models import TrackingLease, TrackingNumber, TrackingVisit

FROM, TO = "2026-11-02", "2026-11-03"
ANNA, BORIS = "anna@vats1.megapbx.ru", "boris@vats1.megapbx.ru"
P1, P2, P3, P4, P5, P6 = (f"7900000000{n}" for n in range(1, 7))
N1, N2, N3, N4 = "74950000001", "74950000002", "74950000011", "74950000012"
STATIC = "74950000099"
DIRECT, SEARCH = "Яндекс.Директ", "Органический поиск"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def call_row(call_id: int, phone: str, direction: str, at: datetime, *, answered: bool,
          manager: str | None = None, first: bool | None = None,
          provider: str = "megafon") -> dict[str, Any]:
    return {
        "id": call_id, "provider": provider, "callid": f"seed-{call_id}", "direction": direction,
        "client_id": int(phone[-1]), "phone": phone, "internal": False,
        "status": "Success" if answered else "Missed", "answered": answered, "ended": True,
        "manager_user": manager, "started_at": at, "duration": 60 if answered else 20,
        "requested": False, "awaiting_pbx": False, "first_time_caller": first,
        "created_at": at, "updated_at": at,
    }


def _attribution(call_id: int, number: str, source: str, confidence: str, *,
                 visit: str | None = None, campaign: str | None = None,
                 matched_by: str = "lease", candidates: list[str] | None = None) -> dict[str, Any]:
    return {
        "call_id": call_id, "method": "tracking", "tracking_number": number,
        "channel_level": visit is None, "source": source, "visit_id": visit,
        "utm_campaign": campaign, "confidence": confidence, "matched_by": matched_by,
        "candidate_visits": json.dumps(candidates) if candidates else None,
        "landing_url": f"https://shop.example/sale?utm_source=y&yclid={call_id}" if visit else None,
        "created_at": utc(2, 7),
    }


def _visit(visit_id: str, pool: str, source: str, at: datetime) -> dict[str, Any]:
    return {"id": visit_id, "pool": pool, "source": source, "created_at": at,
            "last_seen_at": at, "utm_campaign": "spring" if pool == "direct" else None}


def _lease(lease_id: int, number: str, pool: str, visit: str, start: datetime,
           end: datetime) -> dict[str, Any]:
    return {"id": lease_id, "number": number, "pool": pool, "visit_id": visit,
            "started_at": start, "last_ping_at": end, "ends_at": end, "counts_until": end}


def _outbox(row_id: int, sink: str, lead: int, status: str, attempts: int,
            error: str | None = None) -> dict[str, Any]:
    return {"id": row_id, "sink": sink, "key": f"{sink}:{lead}", "lead_id": lead,
            "payload": "{}", "status": status, "attempts": attempts,
            "next_attempt_at": utc(2, 8), "give_up_at": utc(4, 8), "last_error": error,
            "created_at": utc(2, 7, 5)}


ROWS: list[tuple[Any, list[dict[str, Any]]]] = [
    (Manager, [
        {"id": 1, "name": "Анна", "pbx_login": ANNA, "call_mode": "api",
         "call_provider": "megafon", "created_at": utc(1, 0)},
        {"id": 2, "name": "Борис", "pbx_login": BORIS, "call_mode": "api",
         "call_provider": "megafon", "created_at": utc(1, 0)},
    ]),
    (Client, [
        {"id": n, "name": "", "phone": phone, "channel": "telephony",
         "created_at": utc(1, 0), "updated_at": utc(1, 0)}
        for n, phone in enumerate((P1, P2, P3, P4, P5, P6), start=1)
    ]),
    (TrackingNumber, [
        {"number": number, "pool": pool, "active": True, "held_until": utc(1, 0)}
        for number, pool in ((N1, "direct"), (N2, "direct"), (N3, "search"), (N4, "search"))
    ]),
    (TrackingVisit, [
        _visit("va", "direct", DIRECT, utc(2, 7)),
        _visit("vb", "direct", DIRECT, utc(2, 7, 10)),
        _visit("v3", "direct", DIRECT, utc(2, 7, 15)),  # every number busy: overload
        _visit("vc", "search", SEARCH, utc(3, 8)),
    ]),
    (TrackingLease, [
        _lease(1, N1, "direct", "va", utc(2, 7), utc(2, 7, 20)),
        _lease(2, N2, "direct", "vb", utc(2, 7, 10), utc(2, 7, 30)),
        _lease(3, N3, "search", "vc", utc(3, 8), utc(3, 8, 30)),
    ]),
    (Call, [
        call_row(1, P1, "in", utc(2, 7), answered=True, manager=ANNA, first=True),
        call_row(2, P2, "in", utc(2, 7, 30), answered=False, first=True),
        call_row(3, P2, "out", utc(2, 7, 40), answered=True, manager=BORIS),
        call_row(4, P3, "in", utc(2, 17), answered=False, first=True, provider="novofon"),
        call_row(5, P3, "out", utc(3, 6, 30), answered=True, manager=ANNA),
        call_row(6, P4, "in", utc(3, 8), answered=False, first=True),
        call_row(7, P4, "in", utc(3, 8, 20), answered=True, manager=BORIS, first=False),
        call_row(8, P5, "in", utc(3, 9), answered=False, first=True),
        call_row(9, P1, "in", utc(3, 10), answered=True, manager=ANNA, first=False),
        call_row(10, P6, "in", utc(4, 7), answered=True, manager=ANNA, first=True),  # later
    ]),
    (CallAttribution, [
        _attribution(1, N1, DIRECT, "exact", visit="va", campaign="spring"),
        _attribution(2, STATIC, DIRECT, "channel", matched_by="static"),
        _attribution(6, N3, SEARCH, "probable", visit="vc", matched_by="shared",
                     candidates=["vc", "vx"]),
        _attribution(9, N1, DIRECT, "exact", visit="va", campaign="spring"),
    ]),
    (Lead, [
        {"id": 1, "source": "call", "call_id": 1, "phone": P1, "created_at": utc(2, 7, 5)},
        {"id": 2, "source": "form", "phone": P5, "created_at": utc(3, 9)},
        {"id": 3, "source": "call", "call_id": 10, "phone": P6, "created_at": utc(4, 7)},
    ]),
    (OutboxItem, [
        _outbox(1, "roistat", 1, "done", 1),
        _outbox(2, "metrika", 1, "dead", 14, "HTTP 401: invalid token"),
        _outbox(3, "roistat", 2, "pending", 0),
        _outbox(4, "roistat_message", 1, "pending", 2, "HTTP 503"),
    ]),
    (TelegramDelivery, [
        {"id": 1, "target": "topic", "chat_id": -100, "method": "send", "text": "x",
         "status": "pending", "attempts": 0, "next_attempt_at": utc(2, 7),
         "created_at": utc(2, 7)},
    ]),
]


async def seed(db: Database) -> None:
    async with db.engine.begin() as connection:
        for model, rows in ROWS:
            for row in rows:  # rows differ in their keys: one statement each
                await connection.execute(insert(model.__table__).values(**row))
