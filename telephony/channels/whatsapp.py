"""WhatsApp Business Cloud API as a `Channel`: free text inside the 24 h customer-service window,
approved templates outside it (`apis/whatsapp.md`).

Meta's error codes decide what the queue does with a failed send: a closed window (131047), a
wrong or unknown template (132000/132001), a number not on WhatsApp (131026) or a dead token (190)
cannot be cured by retrying; the pair rate limit (131056), the number's throughput (130429) and
Meta's own outages can. Meta sends no Retry-After, so the waits below follow its documented
limits (one message every 6 s to the same person; 80 messages a second per number).

The webhook side (signature, parsing) is in `whatsapp_webhook`, re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telephony.channels.base import (
    SERVICE_WINDOW,
    ChannelError,
    ChannelKind,
    ChannelRules,
    OutgoingMessage,
    SendResult,
    within_window,
)
from telephony.channels.whatsapp_webhook import InvalidWebhook, parse_webhook, verify_signature
from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse

__all__ = [
    "PERMANENT_CODES",
    "RETRY_AFTER",
    "TRANSIENT_CODES",
    "InvalidWebhook",
    "WhatsAppChannel",
    "parse_webhook",
    "verify_signature",
]

RULES = ChannelRules(can_reply=True, window=SERVICE_WINDOW, costs_money=True)

# Retrying cannot help: the request, the recipient or the account must change first.
PERMANENT_CODES = frozenset(
    {
        100,  # invalid parameter
        190,  # access token expired or invalid
        200,  # permission
        368,  # temporarily blocked for policy violations
        131008,  # required parameter missing
        131009,  # parameter value invalid
        131021,  # recipient cannot be the sender
        131026,  # undeliverable: not on WhatsApp, old app, …
        131031,  # account locked
        131042,  # business payment issue
        131047,  # re-engagement: more than 24 h since the client's last message
        131051,  # unsupported message type
        132000,  # template parameter count mismatch
        132001,  # template does not exist (in that language)
        132005,  # template hydrated text too long
        132007,  # template format character policy
        132012,  # template parameter format mismatch
        132015,  # template paused
        132016,  # template disabled
        133010,  # phone number not registered
    }
)
# Retryable, with how long to wait (seconds) before the next try.
RETRY_AFTER: dict[int, float] = {
    131056: 6.0,  # pair rate limit: about one message every 6 s to one person
    130429: 1.0,  # throughput of the business number
    131048: 60.0,  # spam rate limit
    4: 60.0,  # application request limit
    80007: 60.0,  # WhatsApp Business Account rate limit
}
# Meta's side is down or busy: try again later, whatever the HTTP status.
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
MAX_TEXT = 4096  # Meta's limit for a text body


class WhatsAppChannel:
    """Sends through `POST /<version>/<phone_number_id>/messages` with a bearer token."""

    kind = ChannelKind.WHATSAPP
    rules = RULES

    def __init__(
        self,
        base_url: str,
        token: str,
        phone_number_id: str,
        *,
        api_version: str = "v21.0",
        timeout: float = 10.0,
    ) -> None:
        self._http = UpstreamClient(base_url, timeout=timeout, name="WhatsApp")
        self._token = token
        self._path = f"/{api_version}/{phone_number_id}/messages"

    def free_text_allowed(self, last_incoming_at: datetime | None, now: datetime) -> bool:
        return within_window(self.rules, last_incoming_at, now)

    async def send(self, message: OutgoingMessage) -> SendResult:
        payload = self._payload(message)
        try:
            response = await self._http.request(
                "POST",
                self._path,
                json_body=payload,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except UpstreamError as exc:
            # Unreachable: the queue tries again. A timeout may have reached Meta (the message
            # may be out): `timeout`, which the channel sender sets aside instead of resending.
            code = "timeout" if isinstance(exc.__context__, TimeoutError) else None
            raise ChannelError(exc.message, code=code) from None
        body = response.json()
        if 200 <= response.status < 300:
            wamid = _message_id(body)
            if wamid is None:
                # Accepted without an id would leave statuses unmatched; Meta never does this.
                raise ChannelError(f"WhatsApp answered {response.status} without a message id")
            return SendResult(provider_message_id=wamid)
        raise _error(response, body)

    def _payload(self, message: OutgoingMessage) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.address,
            # Echoed in this message's status webhooks: ties them to our delivery row.
            "biz_opaque_callback_data": message.delivery_id[:512],
        }
        if message.template is not None:
            template = message.template
            components: list[dict[str, Any]] = []
            if template.params:
                parameters = [{"type": "text", "text": value} for value in template.params]
                components.append({"type": "body", "parameters": parameters})
            payload["type"] = "template"
            payload["template"] = {
                "name": template.name,
                "language": {"code": template.language},
                "components": components,
            }
            return payload
        if not message.text:
            raise ChannelError("nothing to send: neither text nor template", permanent=True)
        if len(message.text) > MAX_TEXT:
            raise ChannelError(f"text longer than {MAX_TEXT} characters", permanent=True)
        payload["type"] = "text"
        payload["text"] = {"body": message.text, "preview_url": False}
        return payload

    async def close(self) -> None:
        await self._http.close()


def _message_id(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return None
    wamid = messages[0].get("id")
    return wamid if isinstance(wamid, str) and wamid else None


def _error(response: UpstreamResponse, body: Any) -> ChannelError:
    """Meta's `{"error": {"code", "message", "error_data": {"details"}}}` as a ChannelError."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        # No Graph error: a proxy's or Meta's outage page. 5xx and 429 pass, other 4xx do not.
        retry = response.status >= 500 or response.status == 429
        return ChannelError(
            f"WhatsApp answered HTTP {response.status}: {response.text[:200]}",
            code=None,
            permanent=not retry,
            retry_after=_header_wait(response),
        )
    assert isinstance(error, dict)
    message = str(error.get("message") or "error")[:300]
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    text = f"WhatsApp error {code}: {message}" + (f" ({str(details)[:300]})" if details else "")
    if code in RETRY_AFTER:
        wait = _header_wait(response) or RETRY_AFTER[code]
        return ChannelError(text, code=str(code), retry_after=wait)
    permanent = code in PERMANENT_CODES or (
        code not in TRANSIENT_CODES and 400 <= response.status < 500 and response.status != 429
    )
    return ChannelError(
        text, code=str(code), permanent=permanent, retry_after=_header_wait(response)
    )


def _header_wait(response: UpstreamResponse) -> float | None:
    """A Retry-After in seconds if some proxy in between sent one."""
    value = response.headers.get("Retry-After")
    try:
        wait = float(value) if value is not None else None
    except ValueError:
        return None
    return wait if wait is not None and 0 < wait <= 3600 else None
