"""SMS through SMS.ru: send a text, ask its price and the balance, read delivery-status callbacks.

SMS is the universal channel (every mobile number gets it) but one-way: the client cannot answer
a message from a sender name, and every part costs money. SMS has no templates; routing never
sends one here, and one that arrives anyway is refused as permanent.

SMS.ru takes no client-side message id, so a send cannot be made idempotent at SMS.ru: the
queue row's `delivery_id` stays ours. Its only guard is error 231 (the same text to the same
number within a minute is refused), which a resend after a crash may meet; it is permanent here.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from telephony.channels.base import (
    ChannelError,
    ChannelKind,
    ChannelRules,
    DeliveryState,
    DeliveryStatus,
    OutgoingMessage,
    SendResult,
    within_window,
)
from telephony.channels.sms_parts import sms_parts
from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse

log = logging.getLogger(__name__)

PROVIDER = "smsru"
OK_CODE = 100

# Refusals a retry cannot fix are permanent; these are SMS.ru's "try again" answers.
RETRYABLE_CODES = frozenset({220, 500})
ERROR_TEXTS: dict[int, str] = {
    200: "Неправильный api_id (wrong api_id)",
    201: "Не хватает средств на лицевом счету (out of money)",
    202: "Неправильно указан номер получателя (invalid recipient number)",
    203: "Нет текста сообщения (no text)",
    204: "Имя отправителя не согласовано (sender name not approved)",
    205: "Сообщение слишком длинное, больше 8 СМС (text longer than 8 parts)",
    206: "Превышен дневной лимит отправки (daily sending limit reached)",
    207: "На этот номер нельзя отправлять сообщения (this number may not receive messages)",
    208: "Параметр time указан неправильно (bad time)",
    209: "Номер в стоп-листе (the number is in the stop list)",
    210: "Нужен POST (POST required)",
    211: "Метод не найден (unknown method)",
    212: "Текст не в UTF-8 (text is not UTF-8)",
    213: "Больше 100 номеров (more than 100 numbers)",
    220: "Сервис временно недоступен (service temporarily unavailable)",
    230: "Превышен лимит сообщений на этот номер в день (daily limit for this number)",
    231: "Такое же сообщение на этот номер уже было в эту минуту (same text to this number "
    "within a minute: probably sent already)",
    232: "Превышен лимит одинаковых сообщений на этот номер в день (same text to this number "
    "too often today)",
    233: "Превышен лимит повторных сообщений с кодом (repeated code messages limit)",
    300: "Неправильный token (wrong token)",
    301: "Неправильный api_id либо логин/пароль (wrong credentials)",
    302: "Аккаунт не подтверждён (account not confirmed)",
    500: "Ошибка на сервере SMS.ru (SMS.ru server error)",
}

# Delivery-status codes (callbacks and /sms/status) and what they mean in every channel's words.
STATUS_STATES: dict[int, DeliveryState] = {
    100: DeliveryState.QUEUED,
    101: DeliveryState.QUEUED,
    102: DeliveryState.SENT,
    103: DeliveryState.DELIVERED,
    104: DeliveryState.FAILED,
    105: DeliveryState.FAILED,
    106: DeliveryState.FAILED,
    107: DeliveryState.FAILED,
    108: DeliveryState.FAILED,
    150: DeliveryState.FAILED,
}
STATUS_TEXTS: dict[int, str] = {
    100: "в очереди SMS.ru (queued at SMS.ru)",
    101: "передаётся оператору (passing to the operator)",
    102: "отправлено, в пути (sent, in transit)",
    103: "доставлено (delivered)",
    104: "не доставлено: истекло время жизни (not delivered: lifetime expired)",
    105: "не доставлено: удалено оператором (not delivered: deleted by the operator)",
    106: "не доставлено: сбой в телефоне (not delivered: phone failure)",
    107: "не доставлено: неизвестная причина (not delivered: unknown reason)",
    108: "не доставлено: отклонено (not delivered: rejected)",
    150: "не доставлено: нет маршрута на этот номер (not delivered: no route to this number)",
}


class SmsRuChannel:
    """SMS.ru's HTTP API (`json=1`): `sms/send`, `sms/cost`, `my/balance`, all by POST so the
    text and the api_id stay out of URLs and access logs."""

    kind = ChannelKind.SMS
    rules = ChannelRules(can_reply=False, costs_money=True, needs_mobile=True)

    def __init__(
        self,
        base_url: str,
        api_id: str,
        *,
        sender: str | None = None,
        test: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.sender = sender or None
        self.test = test
        self._api_id = api_id
        self._http = UpstreamClient(base_url, timeout=timeout, name="SMS.ru")
        # The last balance SMS.ru named (a send's answer or my/balance) and when it was last
        # asked, for /healthz.
        self.last_balance: float | None = None
        self.last_balance_at: float | None = None

    def free_text_allowed(self, last_incoming_at: datetime | None, now: datetime) -> bool:
        return within_window(self.rules, last_incoming_at, now)

    async def send(self, message: OutgoingMessage) -> SendResult:
        if message.template is not None:
            raise ChannelError("SMS has no templates", code="template", permanent=True)
        if not message.text:
            raise ChannelError(ERROR_TEXTS[203], code="203", permanent=True)
        form = {"to": message.address, "msg": message.text}
        if self.sender:
            form["from"] = self.sender
        if self.test:
            form["test"] = "1"
        answer = await self._call("/sms/send", form)
        entry = _number_entry(answer, message.address)
        sms_id = entry.get("sms_id")
        if not isinstance(sms_id, str) or not sms_id:
            # Accepted, yet no id to match statuses by: say so rather than guess.
            raise ChannelError("SMS.ru accepted the message without an sms_id", code="no_sms_id")
        balance = _number(answer.get("balance"))
        self._saw_balance(balance)
        parts = _int(entry.get("sms"))
        return SendResult(
            provider_message_id=sms_id,
            cost=_number(entry.get("cost")),
            parts=parts if parts is not None else sms_parts(message.text),
            balance=balance,
        )

    async def cost(self, phone: str, text: str) -> tuple[float, int]:
        """The price and the number of parts SMS.ru would charge for `text` to `phone`."""
        answer = await self._call("/sms/cost", {"to": phone, "msg": text})
        entry = _number_entry(answer, phone)
        cost, parts = _number(entry.get("cost")), _int(entry.get("sms"))
        if cost is None or parts is None:
            raise ChannelError("SMS.ru named no cost for the message", code="bad_answer")
        return cost, parts

    async def balance(self) -> float:
        answer = await self._call("/my/balance", {})
        balance = _number(answer.get("balance"))
        if balance is None:
            raise ChannelError("SMS.ru named no balance", code="bad_answer")
        self._saw_balance(balance)
        return balance

    async def status(self, sms_id: str) -> DeliveryStatus | None:
        """A sent message's status by its sms_id (`sms/status`), for a delivery whose callback
        never came; None when SMS.ru does not know the id or names a code we do not track.
        SMS.ru looks messages up by its own id only: a send whose answer was lost cannot be
        found this way."""
        answer = await self._call("/sms/status", {"sms_id": sms_id})
        entries = answer.get("sms")
        entry = entries.get(sms_id) if isinstance(entries, dict) else None
        code = _int(entry.get("status_code")) if isinstance(entry, dict) else None
        if code is None or code not in STATUS_STATES:
            return None
        return DeliveryStatus(
            kind=ChannelKind.SMS,
            provider_message_id=sms_id,
            state=STATUS_STATES[code],
            at=datetime.now(UTC),
            code=str(code),
            detail=STATUS_TEXTS[code],
        )

    async def close(self) -> None:
        await self._http.close()

    def _saw_balance(self, balance: float | None) -> None:
        if balance is not None:
            self.last_balance, self.last_balance_at = balance, time.monotonic()

    async def _call(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        """One request; the answer when its top-level status is OK, else a `ChannelError`."""
        try:
            response = await self._http.request(
                "POST", path, form={"api_id": self._api_id, "json": "1", **form}
            )
        except UpstreamError as exc:
            # A send that timed out may have reached SMS.ru (the SMS may be out): `timeout`.
            code = "timeout" if isinstance(exc.__context__, TimeoutError) else "unreachable"
            raise ChannelError(exc.message, code=code) from None
        answer = _answer(response)
        if answer.get("status") != "OK":
            raise _refusal(answer)
        return answer


def _answer(response: UpstreamResponse) -> dict[str, Any]:
    if response.status >= 500 or response.status == 429:
        retry_after = _number(response.headers.get("Retry-After"))
        raise ChannelError(
            f"SMS.ru answered HTTP {response.status}",
            code=f"http_{response.status}",
            retry_after=retry_after,
        )
    body = response.json()
    if response.status >= 400:
        raise ChannelError(
            f"SMS.ru answered HTTP {response.status}: {response.text.strip()[:200]!r}",
            code=f"http_{response.status}",
            permanent=True,
        )
    if not isinstance(body, dict):
        # Not SMS.ru's JSON (a proxy's page?): retried, the send may not have happened.
        raise ChannelError(
            f"SMS.ru answered something else than JSON: {response.text.strip()[:200]!r}",
            code="bad_answer",
        )
    return body


def _refusal(answer: Mapping[str, Any]) -> ChannelError:
    code = _int(answer.get("status_code"))
    text = answer.get("status_text")
    message = ERROR_TEXTS.get(code or 0) or (text if isinstance(text, str) and text else None)
    return ChannelError(
        f"SMS.ru refused: {message or 'unknown error'}",
        code=str(code) if code is not None else "unknown",
        permanent=code not in RETRYABLE_CODES,
    )


def _number_entry(answer: Mapping[str, Any], phone: str) -> Mapping[str, Any]:
    """The answer's `sms.<phone>` entry (the only one when SMS.ru wrote the number its way);
    a `ChannelError` when it refused this number."""
    entries = answer.get("sms")
    if not isinstance(entries, dict) or not entries:
        raise ChannelError("SMS.ru answered without the message", code="bad_answer")
    entry = entries.get(phone)
    if entry is None and len(entries) == 1:
        entry = next(iter(entries.values()))
    if not isinstance(entry, dict):
        raise ChannelError("SMS.ru answered without this number", code="bad_answer")
    if entry.get("status") != "OK":
        raise _refusal(entry)
    return entry


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _int(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


# --- delivery-status callbacks -------------------------------------------------------------

# SMS.ru's message ids look like `000000-10000000`; anything else did not come from it.
SMS_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
MAX_ENTRIES = 500  # SMS.ru batches statuses; a real body carries far fewer


class InvalidCallback(ValueError):
    """A callback body SMS.ru would not send; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _entries(form: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    pairs = form.items() if isinstance(form, Mapping) else form
    # PHP-style `data[]`, `data[0]`, … (SMS.ru numbers them) and a bare `data`.
    return [value for key, value in pairs if key == "data" or key.startswith("data[")]


def parse_status_callback(
    form: Mapping[str, str] | Iterable[tuple[str, str]], *, received_at: datetime | None = None
) -> list[DeliveryStatus]:
    """The `sms_status` entries of a callback body (each lines `sms_status`, sms_id, status
    code, unix time). Entries of other kinds are skipped (SMS.ru sends more than statuses), as
    are status codes we do not know (SMS.ru would repeat a refused body forever); a body with
    no entry, or a broken `sms_status` entry, raises `InvalidCallback`."""
    entries = _entries(form)
    if not entries:
        raise InvalidCallback("no data[] entries")
    if len(entries) > MAX_ENTRIES:
        raise InvalidCallback(f"more than {MAX_ENTRIES} entries")
    statuses = []
    for entry in entries:
        lines = [line.strip() for line in entry.replace("\r\n", "\n").split("\n")]
        if lines[0] != "sms_status":
            continue
        if len(lines) < 3:
            raise InvalidCallback("an sms_status entry needs sms_id and status lines")
        sms_id, code_text = lines[1], lines[2]
        if not SMS_ID.fullmatch(sms_id):
            raise InvalidCallback("sms_id is not an SMS.ru message id")
        if not (code_text.isascii() and code_text.isdigit() and len(code_text) <= 4):
            raise InvalidCallback("status is not an SMS.ru status code")
        code = int(code_text)
        state = STATUS_STATES.get(code)
        if state is None:
            log.info("SMS.ru status %d for %s is not one we track: skipped", code, sms_id)
            continue
        statuses.append(
            DeliveryStatus(
                kind=ChannelKind.SMS,
                provider_message_id=sms_id,
                state=state,
                at=_when(lines[3] if len(lines) > 3 else "", received_at),
                code=str(code),
                detail=STATUS_TEXTS[code],
            )
        )
    return statuses


def _when(text: str, received_at: datetime | None) -> datetime:
    if not text:
        return received_at or datetime.now(UTC)
    if not (text.isascii() and text.isdigit() and len(text) <= 11):
        raise InvalidCallback("time is not a unix time")
    return datetime.fromtimestamp(int(text), UTC)


# --- health ----------------------------------------------------------------------------------

BALANCE_MAX_AGE = 60.0  # seconds a seen balance answers /healthz before SMS.ru is asked again


async def sms_balance_problem(
    channel: SmsRuChannel, *, threshold: float = 0.0, max_age: float = BALANCE_MAX_AGE
) -> str | None:
    """`/healthz` problem when the SMS.ru balance is at or below `threshold` (no SMS goes out).
    Uses the balance a recent send named; asks SMS.ru at most once per `max_age`. SMS.ru being
    unreachable is not our health problem (sends retry): it is logged, not reported."""
    checked_at = channel.last_balance_at
    if checked_at is None or time.monotonic() - checked_at >= max_age:
        try:
            await channel.balance()
        except ChannelError as exc:
            log.warning("SMS.ru balance unknown: %s", exc.message)
            # Not asked again before max_age: a down SMS.ru is not hammered by every probe.
            channel.last_balance_at = time.monotonic()
    balance = channel.last_balance
    if balance is not None and balance <= threshold:
        return f"SMS.ru balance is {balance:.2f}"
    return None
