"""A fake SMS.ru over real HTTP (`json=1` answers): sends, costs, balance and statuses.

It enforces what the real service does: the api_id, money (charged per part: 160/153 GSM-7
characters, 70/67 otherwise), mobile numbers only (207 for a landline, 202 for a number that is
none), approved sender names (204), the 8-part limit (205), the stop list (209) and the same
text to the same number within a minute (231). `test=1` validates and answers without sending
or charging. It fails on demand (an HTTP status, a timeout, SMS.ru's own 220/500) and posts
delivery-status callbacks (`data[N]` lines) where told.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

API_ID = "test-smsru-api-id"
PRICE_PER_PART = 4.0

# Just enough of GSM 03.38 to tell a Latin text from a Cyrillic one (the fake's own count).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def parts_of(text: str) -> int:
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        units, single, split = sum(2 if c in _GSM_EXT else 1 for c in text), 160, 153
    else:
        units, single, split = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // split)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Sent:
    sms_id: str
    phone: str
    text: str
    sender: str | None
    parts: int
    cost: float
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeSmsRu:
    api_id: str = API_ID
    balance: float = 100.0
    price_per_part: float = PRICE_PER_PART
    # None: any sender name is approved; else only these.
    senders: set[str] | None = None
    stop_list: set[str] = field(default_factory=set)
    # The same text to the same number within this many seconds is refused (231); 0 = off.
    same_text_window: float = 60.0
    requests: list[Request] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    tested: list[dict[str, str]] = field(default_factory=list)  # test=1 sends: nothing went out
    statuses: dict[str, int] = field(default_factory=dict)  # sms_id → last status code
    # Failures for the next requests: an HTTP status, "timeout" (answered after the client gave
    # up: a send is done all the same, as on the real service), "html" (200 with a proxy's
    # page), or an SMS.ru code (220, 500).
    failures: list[int | str] = field(default_factory=list)
    timeout_seconds: float = 5.0
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(10000001))
    _late: bool = False

    async def _answer(self, response: web.Response) -> web.Response:
        """The answer, after `timeout_seconds` when a timeout was asked for: the work is done
        first (an SMS is out) even though the client stops waiting."""
        if self._late:
            self._late = False
            await asyncio.sleep(self.timeout_seconds)
        return response

    def fail_next(self, *failures: int | str) -> None:
        self.failures.extend(failures)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/sms/send", self._send)
        app.router.add_route("*", "/sms/cost", self._cost)
        app.router.add_route("*", "/sms/status", self._status)
        app.router.add_route("*", "/my/balance", self._balance)
        return app

    # --- plumbing -----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        self.requests.append(Request(request.method, request.path, params))
        return params

    async def _refused(self, params: dict[str, str]) -> web.Response | None:
        """A failure asked for, or SMS.ru's refusal of the request as a whole."""
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "timeout":
                # Done as usual, answered long after the client gave up (see `_answer`).
                self._late = True
            elif failure == "html":  # a proxy's page instead of SMS.ru's JSON
                return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
            elif isinstance(failure, str):
                return _error(int(failure), "Сервис временно недоступен, попробуйте чуть позже")
            else:
                return web.Response(status=failure, text="Internal Server Error")
        if params.get("api_id") != self.api_id:
            return _error(200, "Неправильный api_id")
        return None

    def _check_number(self, phone: str) -> tuple[int, str] | None:
        if not (phone.isdigit() and 10 <= len(phone) <= 15):
            return 202, "Неправильно указан номер телефона получателя, либо на него нет маршрута"
        if phone.startswith("7") and (len(phone) != 11 or phone[1] != "9"):
            # A Russian number that is not mobile (a landline, 8-800): no SMS route.
            return 207, "На этот номер нет маршрута для доставки сообщений"
        if phone in self.stop_list:
            return 209, "Вы добавили этот номер (или один из номеров) в стоп-лист"
        return None

    def _check_message(self, params: dict[str, str]) -> tuple[int, str] | None:
        text = params.get("msg", "")
        if not text:
            return 203, "Нет текста сообщения"
        if parts_of(text) > 8:
            return 205, "Сообщение слишком длинное (превышает 8 СМС)"
        sender = params.get("from")
        if sender and self.senders is not None and sender not in self.senders:
            return 204, "Имя отправителя не согласовано с администрацией"
        return None

    # --- endpoints ----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if (refused := await self._refused(params)) is not None:
            return refused
        if (problem := self._check_message(params)) is not None:
            return await self._answer(_error(*problem))
        phone, text = params.get("to", ""), params.get("msg", "")
        testing = params.get("test") == "1"
        parts = parts_of(text)
        cost = round(parts * self.price_per_part, 2)
        if (problem := self._check_number(phone)) is None:
            if self.balance < cost:
                problem = 201, "Не хватает средств на лицевом счету"
            elif not testing and self._repeated(phone, text):
                problem = 231, "Превышен лимит одинаковых сообщений на этот номер в минуту"
        if problem is not None:
            entry: dict[str, Any] = {"status": "ERROR", "status_code": problem[0]}
            entry["status_text"] = problem[1]
            return await self._answer(_ok({"sms": {phone or "0": entry}, "balance": self.balance}))
        sms_id = f"000000-{next(self._ids)}"
        if testing:
            self.tested.append(params)
        else:
            self.balance = round(self.balance - cost, 2)
            self.sent.append(Sent(sms_id, phone, text, params.get("from"), parts, cost))
            self.statuses[sms_id] = 100
        entry = {"status": "OK", "status_code": 100, "sms_id": sms_id}
        return await self._answer(_ok({"sms": {phone: entry}, "balance": self.balance}))

    def _repeated(self, phone: str, text: str) -> bool:
        if self.same_text_window <= 0:
            return False
        now = time.monotonic()
        return any(
            s.phone == phone and s.text == text and now - s.at < self.same_text_window
            for s in self.sent
        )

    async def _cost(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if (refused := await self._refused(params)) is not None:
            return refused
        if (problem := self._check_message(params)) is not None:
            return await self._answer(_error(*problem))
        phone = params.get("to", "")
        if (problem := self._check_number(phone)) is not None:
            entry: dict[str, Any] = {
                "status": "ERROR",
                "status_code": problem[0],
                "status_text": problem[1],
            }
            return await self._answer(
                _ok({"sms": {phone or "0": entry}, "total_cost": 0, "total_sms": 0})
            )
        parts = parts_of(params["msg"])
        cost = round(parts * self.price_per_part, 2)
        entry = {"status": "OK", "status_code": 100, "cost": cost, "sms": parts}
        return await self._answer(
            _ok({"sms": {phone: entry}, "total_cost": cost, "total_sms": parts})
        )

    async def _status(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if (refused := await self._refused(params)) is not None:
            return refused
        found: dict[str, Any] = {}
        for sms_id in filter(None, params.get("sms_id", "").split(",")):
            if sms_id in self.statuses:
                found[sms_id] = {"status": "OK", "status_code": self.statuses[sms_id]}
            else:
                found[sms_id] = {
                    "status": "ERROR",
                    "status_code": -1,
                    "status_text": "Сообщение не найдено",
                }
        return await self._answer(_ok({"sms": found, "balance": self.balance}))

    async def _balance(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if (refused := await self._refused(params)) is not None:
            return refused
        return await self._answer(_ok({"balance": self.balance}))

    # --- callbacks ----------------------------------------------------------------------------

    async def report_status(
        self, callback_url: str, sms_id: str, code: int, *, at: int | None = None
    ) -> tuple[int, str]:
        """POST one status to `callback_url` as SMS.ru does; returns the answer (SMS.ru repeats
        until it reads `100`)."""
        return await self.report_statuses(callback_url, [(sms_id, code)], at=at)

    async def report_statuses(
        self, callback_url: str, statuses: list[tuple[str, int]], *, at: int | None = None
    ) -> tuple[int, str]:
        when = at if at is not None else int(time.time())
        form = {
            f"data[{i}]": f"sms_status\n{sms_id}\n{code}\n{when}"
            for i, (sms_id, code) in enumerate(statuses)
        }
        for sms_id, code in statuses:
            if sms_id in self.statuses:
                self.statuses[sms_id] = code
        async with (
            aiohttp.ClientSession() as session,
            session.post(callback_url, data=form) as response,
        ):
            return response.status, await response.text()


def _ok(body: dict[str, Any]) -> web.Response:
    return web.json_response({"status": "OK", "status_code": 100, **body})


def _error(code: int, text: str) -> web.Response:
    return web.json_response({"status": "ERROR", "status_code": code, "status_text": text})
