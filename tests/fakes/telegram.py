"""A fake Telegram Bot API over real HTTP: records every call, answers like Telegram,
enforces Telegram's send limits (429 with retry_after), deletes topics and fails (429, 400,
500) on demand, and serves getUpdates for polling."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.ratelimit import TokenBuckets

BOT_ID = 42
TOKEN = "42:TEST"


# Calls that put something into a chat: Telegram counts them against the chat's budget.
COUNTED = {
    "sendMessage",
    "copyMessage",
    "forwardMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "createForumTopic",
    "editForumTopic",
    "closeForumTopic",
    "reopenForumTopic",
}


@dataclass
class Limits:
    """Telegram's limits: a group takes 20 sends in any minute (a sliding window, edits
    included); a private chat about 1 a second with short bursts, the whole bot about 30 a
    second (token buckets). `scale` shrinks every window (0.01: a group's minute lasts 0.6 s)
    so tests stay fast; retry_after is reported in unscaled (Telegram) seconds."""

    group_per_minute: int = 20
    private_per_second: float = 1
    private_burst: int = 3
    global_per_second: float = 30
    scale: float = 1.0
    enabled: bool = True


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    at: float  # the fake's clock (monotonic) when received


@dataclass
class Sent:
    """A message that appeared in a chat (sendMessage or copyMessage)."""

    method: str
    chat_id: int
    message_id: int
    thread_id: int | None
    text: str | None
    reply_markup: Any = None
    from_chat_id: int | None = None
    from_message_id: int | None = None
    edits: int = 0  # editMessageText calls that changed it (text holds the latest)


def _decode(value: str) -> Any:
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if value.lstrip("-").isdigit():
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    return value


@dataclass
class FakeTelegram:
    url: str = ""
    calls: list[ApiCall] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    topics: dict[int, str] = field(default_factory=dict)
    deleted_topics: set[int] = field(default_factory=set)
    updates: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # set: long polls end now
    # method → list of (status, description, retry_after) answered instead, first one first.
    failures: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _threads: itertools.count[int] = field(default_factory=lambda: itertools.count(10))
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    limits: Limits = field(default_factory=Limits)
    # Calls refused with 429 because a limit was exceeded (not the planned failures).
    refused: list[ApiCall] = field(default_factory=list)
    # Its limits count on this clock: a test moving a fake clock shares it with the app.
    clock: Clock = SYSTEM_CLOCK
    _windows: dict[int, deque[float]] = field(default_factory=dict)
    _buckets: dict[str, TokenBuckets] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        return app

    # --- control ---------------------------------------------------------------------------

    def fail(
        self, method: str, status: int, description: str, *, retry_after: int | None = None
    ) -> None:
        self.failures.setdefault(method, []).append((status, description, retry_after))

    def delete_topic(self, thread_id: int) -> None:
        """What a human deleting the topic in the group does."""
        self.deleted_topics.add(thread_id)

    def next_update_id(self) -> int:
        return next(self._update_ids)

    # --- queries for assertions ------------------------------------------------------------

    def methods(self) -> list[str]:
        return [call.method for call in self.calls if call.method != "getUpdates"]

    def called(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def in_thread(self, chat_id: int, thread_id: int | None) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id and s.thread_id == thread_id]

    def texts_in(self, chat_id: int, thread_id: int | None) -> list[str]:
        return [s.text or "" for s in self.in_thread(chat_id, thread_id)]

    def answers(self) -> list[dict[str, Any]]:
        return [call.params for call in self.called("answerCallbackQuery")]

    async def wait_for(self, predicate: Any) -> None:
        """Wait until `predicate()` holds (woken by each API call, no polling sleeps)."""
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(predicate)

    # --- the API ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        form = await request.post()
        params = {key: _decode(str(value)) for key, value in form.items()}
        self.calls.append(ApiCall(method, params, self.clock.monotonic()))
        try:
            if method == "getUpdates":
                return await self._get_updates(params)
            planned = self.failures.get(method)
            if planned:
                status, description, retry_after = planned.pop(0)
                return self._error(status, description, retry_after)
            if method in COUNTED and "chat_id" in params:
                wait = self._over_limit(int(params["chat_id"]))
                if wait is not None:
                    self.refused.append(self.calls[-1])
                    return self._error(
                        429, f"Too Many Requests: retry after {wait}", retry_after=wait
                    )
            handler = getattr(self, f"_{method}", None)
            if handler is None:
                return self._ok(True)
            result: web.Response = handler(params)
            return result
        finally:
            async with self.changed:
                self.changed.notify_all()

    def _over_limit(self, chat_id: int) -> int | None:
        """Counts the call against its chat's and the bot's budget; the retry_after (Telegram
        seconds) when one is spent. A refused call is not counted."""
        limits = self.limits
        if not limits.enabled:
            return None
        now = self.clock.monotonic()
        if not self._buckets:
            self._buckets["private"] = TokenBuckets(
                limits.private_per_second / limits.scale, limits.private_burst, clock=self.clock
            )
            self._buckets["all"] = TokenBuckets(
                limits.global_per_second / limits.scale, limits.global_per_second, clock=self.clock
            )
        waits = [self._buckets["all"].wait_for("all")]
        window = 60.0 * limits.scale
        sent = self._windows.setdefault(chat_id, deque())
        if chat_id < 0:
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) >= limits.group_per_minute:
                waits.append(sent[0] + window - now)
        else:
            waits.append(self._buckets["private"].wait_for(chat_id))
        if max(waits) > 0:
            return max(1, math.ceil(max(waits) / limits.scale))
        self._buckets["all"].take("all")
        if chat_id < 0:
            sent.append(now)
        else:
            self._buckets["private"].take(chat_id)
        return None

    def _ok(self, result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def _error(self, status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Менеджеры", "is_forum": True}
        return {"id": chat_id, "type": "private", "first_name": "Client"}

    def _thread_gone(self, params: dict[str, Any]) -> bool:
        return params.get("message_thread_id") in self.deleted_topics

    def _message(self, chat_id: int, message_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Trubka"},
        }
        if params.get("text") is not None:
            message["text"] = str(params["text"])
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        if (
            isinstance(params.get("reply_markup"), dict)
            and "inline_keyboard" in params["reply_markup"]
        ):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _getMe(self, params: dict[str, Any]) -> web.Response:
        return self._ok(
            {"id": BOT_ID, "is_bot": True, "first_name": "Trubka", "username": "trubka_bot"}
        )

    def _sendMessage(self, params: dict[str, Any]) -> web.Response:
        if self._thread_gone(params):
            return self._error(400, "Bad Request: message thread not found")
        chat_id = int(params["chat_id"])
        message_id = next(self._ids)
        self.sent.append(
            Sent(
                "sendMessage",
                chat_id,
                message_id,
                params.get("message_thread_id"),
                str(params.get("text", "")),
                params.get("reply_markup"),
            )
        )
        return self._ok(self._message(chat_id, message_id, params))

    def _copyMessage(self, params: dict[str, Any]) -> web.Response:
        if self._thread_gone(params):
            return self._error(400, "Bad Request: message thread not found")
        message_id = next(self._ids)
        self.sent.append(
            Sent(
                "copyMessage",
                int(params["chat_id"]),
                message_id,
                params.get("message_thread_id"),
                None,
                from_chat_id=int(params["from_chat_id"]),
                from_message_id=int(params["message_id"]),
            )
        )
        return self._ok({"message_id": message_id})

    def _editMessageText(self, params: dict[str, Any]) -> web.Response:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        edited = next(
            (s for s in self.sent if (s.chat_id, s.message_id) == (chat_id, message_id)), None
        )
        if edited is not None:
            if edited.thread_id in self.deleted_topics:
                return self._error(400, "Bad Request: message to edit not found")
            if edited.text == params.get("text"):
                return self._error(400, "Bad Request: message is not modified")
            edited.text = str(params.get("text", ""))
            edited.edits += 1
        return self._ok(self._message(chat_id, message_id, params))

    def _createForumTopic(self, params: dict[str, Any]) -> web.Response:
        thread_id = next(self._threads)
        self.topics[thread_id] = str(params["name"])
        return self._ok(
            {"message_thread_id": thread_id, "name": params["name"], "icon_color": 7322096}
        )

    def _editForumTopic(self, params: dict[str, Any]) -> web.Response:
        thread_id = int(params["message_thread_id"])
        if thread_id in self.deleted_topics or thread_id not in self.topics:
            return self._error(400, "Bad Request: message thread not found")
        self.topics[thread_id] = str(params["name"])
        return self._ok(True)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        timeout = float(params.get("timeout", 0) or 0)
        updates: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(timeout, 0.01)):
                # A closing fake answers a waiting long poll at once (else its server's close
                # waits out the poll: 10 s a test).
                waiting = asyncio.ensure_future(self.updates.get())
                closing = asyncio.ensure_future(self.closing.wait())
                try:
                    await asyncio.wait((waiting, closing), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closing.cancel()
                    if not waiting.done():
                        waiting.cancel()
                if not waiting.cancelled():
                    updates.append(waiting.result())
        while not self.updates.empty():
            updates.append(self.updates.get_nowait())
        return self._ok(updates)
