"""A fake WhatsApp Business Cloud API over real HTTP that enforces the real rules
(`apis/whatsapp.md`), records every send and fails on demand.

- `POST /<version>/<phone_number_id>/messages` with `Authorization: Bearer <token>` (190 when
  wrong, HTTP 401); an unknown phone number id or a malformed body is error 100.
- The 24-hour customer-service window per wa_id: free text is refused with 131047 unless the
  client wrote within 24 h. The fake learns that only from `client_writes`, which also POSTs
  the signed inbound webhook to the app, as Meta does.
- Templates are registered with their language and body parameter count: 132001 unknown (in that
  language), 132000 wrong count.
- Per-number throughput (130429) and the pair rate limit per recipient (131056), on short
  windows that tests set; recipients not on WhatsApp (131026).
- `fail`/`fail_with`/`stall`: an outage page, a Meta error, a slow answer (the send still goes
  through, as when a real timeout hides a delivered message).
- `report_status` POSTs a signed status webhook (sent/delivered/read/failed) for a wamid.

The signature is computed here on its own (not with telephony.channels): HMAC-SHA256 of the
exact body bytes, which are Meta's style of JSON (non-ASCII and `/` escaped), so an app that
re-serializes before checking fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "test-whatsapp-token"
APP_SECRET = "test-whatsapp-app-secret"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "74951234567"
WABA_ID = "102290129340398"
API_VERSION = "v21.0"
WINDOW_SECONDS = 24 * 3600

TITLES = {
    100: "Invalid parameter",
    190: "Access token has expired or is invalid",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def meta_json(value: Any) -> bytes:
    """JSON as Meta writes it: ASCII only, slashes escaped."""
    return json.dumps(value, ensure_ascii=True).replace("/", "\\/").encode()


@dataclass
class Sent:
    """A message the fake accepted."""

    wamid: str
    to: str
    type: str
    text: str | None
    template: str | None
    language: str | None
    params: list[str]
    callback_data: str | None
    at: float


@dataclass
class Attempt:
    """Every request to the messages endpoint, accepted or not (`error`: Meta's code)."""

    to: str | None
    body: Any
    authorization: str
    status: int
    error: int | None


@dataclass
class Delivery:
    """A webhook the fake POSTed to the app, and what the app answered."""

    status: int
    answer: str
    body: bytes
    message_id: str | None = None


@dataclass
class FakeWhatsApp:
    token: str = TOKEN
    app_secret: str = APP_SECRET
    phone_number_id: str = PHONE_NUMBER_ID
    api_version: str = API_VERSION
    url: str = ""
    # (name, language) -> number of body parameters
    templates: dict[tuple[str, str], int] = field(default_factory=dict)
    not_on_whatsapp: set[str] = field(default_factory=set)
    # Pair rate limit: at most `pair_limit` messages to one wa_id within `pair_window` seconds.
    pair_limit: int = 3
    pair_window: float = 6.0
    # Throughput of the business number: messages per second (all recipients).
    throughput: int = 80
    sent: list[Sent] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    last_incoming: dict[str, float] = field(default_factory=dict)
    # Answers to give before the normal ones: ("answer", status, body) or ("stall", seconds).
    queued: list[tuple[str, Any, Any]] = field(default_factory=list)
    clock_offset: float = 0.0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- what tests set up -------------------------------------------------------------------
    def register_template(self, name: str, params: int, language: str = "ru") -> None:
        self.templates[(name, language)] = params

    def fail(self, status: int = 500, body: Any = None) -> None:
        """The next answer is this one (default: an outage with a non-Graph body)."""
        self.queued.append(("answer", status, body if body is not None else "Service Unavailable"))

    def fail_with(self, code: int, status: int = 400) -> None:
        """The next answer is Meta's error `code`."""
        self.queued.append(("answer", status, self._error_body(code)))

    def stall(self, seconds: float) -> None:
        """The next send is accepted only after `seconds` (a client's timeout sees nothing)."""
        self.queued.append(("stall", seconds, None))

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (the 24 h window, the rate limits) forward."""
        self.clock_offset += seconds

    def now(self) -> float:
        return time.time() + self.clock_offset

    def to(self, wa_id: str) -> list[Sent]:
        return [message for message in self.sent if message.to == wa_id]

    # --- the client's side: webhooks to the app ---------------------------------------------
    async def client_writes(
        self, app_webhook_url: str, wa_id: str, text: str, name: str = ""
    ) -> Delivery:
        """The client writes to the business: the window opens, the app gets the webhook."""
        message = {"type": "text", "text": {"body": text}}
        return await self.client_sends(app_webhook_url, wa_id, message, name)

    async def client_sends(
        self, app_webhook_url: str, wa_id: str, message: dict[str, Any], name: str = ""
    ) -> Delivery:
        """Any message type (`{"type": "image", "image": {…}}`) from the client."""
        self.last_incoming[wa_id] = self.now()
        wamid = self._wamid()
        value = {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {"from": wa_id, "id": wamid, "timestamp": str(int(self.now())), **message}
            ],
        }
        delivery = await self.post_webhook(app_webhook_url, self._envelope(value))
        delivery.message_id = wamid
        return delivery

    async def report_status(
        self, app_webhook_url: str, wamid: str, status: str, *, error_code: int | None = None
    ) -> Delivery:
        """Meta's word on a sent message: sent, delivered, read or failed (with `error_code`)."""
        sent = next((message for message in self.sent if message.wamid == wamid), None)
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(self.now())),
            "recipient_id": sent.to if sent else "79990000000",
        }
        if sent is not None and sent.callback_data:
            entry["biz_opaque_callback_data"] = sent.callback_data
        if status == "failed":
            code = error_code or 131026
            title = TITLES.get(code, "Error")
            entry["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": f"{title} (fake)"},
                }
            ]
        value = {"messaging_product": "whatsapp", "metadata": self._metadata(), "statuses": [entry]}
        return await self.post_webhook(app_webhook_url, self._envelope(value))

    async def post_webhook(
        self, app_webhook_url: str, body: Any, *, signature: str | None = None
    ) -> Delivery:
        """POST a body as Meta does, signed with the app secret unless `signature` is given."""
        raw = body if isinstance(body, bytes) else meta_json(body)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature
            if signature is not None
            else sign(self.app_secret, raw),
            "User-Agent": "facebookexternalua",
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(app_webhook_url, data=raw, headers=headers) as response,
        ):
            delivery = Delivery(response.status, await response.text(), raw)
        self.deliveries.append(delivery)
        return delivery

    # --- the API -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        to = body.get("to") if isinstance(body, dict) else None
        attempt = Attempt(to if isinstance(to, str) else None, body, authorization, 200, None)
        self.attempts.append(attempt)
        stall = 0.0
        if self.queued:
            kind, first, second = self.queued.pop(0)
            if kind == "answer":
                attempt.status = first
                if isinstance(second, dict):
                    attempt.error = second["error"]["code"]
                    return web.json_response(second, status=first)
                return web.Response(text=str(second), status=first)
            stall = first
        code = self._refusal(request, authorization, body)
        if code is not None:
            attempt.status, attempt.error = (401 if code == 190 else 400), code
            return web.json_response(self._error_body(code), status=attempt.status)
        assert isinstance(body, dict)
        accepted = self._accept(body)  # recorded before a stall: the message went regardless
        await asyncio.sleep(stall)
        return web.json_response(accepted)

    def _refusal(self, request: web.Request, authorization: str, body: Any) -> int | None:
        """Meta's error code for this send, or None when it goes."""
        if not hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode()):
            return 190
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return 100
        if request.match_info["version"] != self.api_version:
            return 100
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return 100
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            return 100
        now = self.now()
        if sum(1 for m in self.sent if now - m.at < 1.0) >= self.throughput:
            return 130429
        if to in self.not_on_whatsapp:
            return 131026
        recent = [m for m in self.to(to) if now - m.at < self.pair_window]
        if len(recent) >= self.pair_limit:
            return 131056
        kind = body.get("type")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("body"), str):
                return 100
            if not text["body"] or len(text["body"]) > 4096:
                return 100
            wrote = self.last_incoming.get(to)
            if wrote is None or now - wrote >= WINDOW_SECONDS:
                return 131047
            return None
        if kind == "template":
            return self._template_refusal(body.get("template"))
        return 100

    def _template_refusal(self, template: Any) -> int | None:
        if not isinstance(template, dict):
            return 100
        language = template.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        expected = self.templates.get((str(template.get("name")), str(code)))
        if expected is None:
            return 132001
        params = _body_params(template)
        if params is None:
            return 100
        if len(params) != expected:
            return 132000
        return None

    def _accept(self, body: dict[str, Any]) -> dict[str, Any]:
        wamid = self._wamid()
        to = body["to"]
        template = body.get("template") if body["type"] == "template" else None
        callback = body.get("biz_opaque_callback_data")
        self.sent.append(
            Sent(
                wamid=wamid,
                to=to,
                type=body["type"],
                text=body["text"]["body"] if body["type"] == "text" else None,
                template=template["name"] if template else None,
                language=template["language"]["code"] if template else None,
                params=(_body_params(template) or []) if template else [],
                callback_data=callback if isinstance(callback, str) else None,
                at=self.now(),
            )
        )
        message: dict[str, Any] = {"id": wamid}
        if template:
            message["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [message],
        }

    # --- shapes ------------------------------------------------------------------------------
    def _wamid(self) -> str:
        return f"wamid.FAKE{next(self._ids):012d}"

    def _metadata(self) -> dict[str, str]:
        return {
            "display_phone_number": DISPLAY_PHONE_NUMBER,
            "phone_number_id": self.phone_number_id,
        }

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
        }

    def _error_body(self, code: int) -> dict[str, Any]:
        title = TITLES.get(code, "Error")
        return {
            "error": {
                "message": f"(#{code}) {title}",
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": f"{title} (fake)"},
                "fbtrace_id": "AbCdEfFake",
            }
        }


def _body_params(template: dict[str, Any]) -> list[str] | None:
    """The body component's text parameters (none when there is no body component)."""
    components = template.get("components", [])
    if not isinstance(components, list):
        return None
    params: list[str] = []
    for component in components:
        if not isinstance(component, dict):
            return None
        if component.get("type") != "body":
            continue
        for parameter in component.get("parameters", []):
            if not isinstance(parameter, dict) or not isinstance(parameter.get("text"), str):
                return None
            params.append(parameter["text"])
    return params
