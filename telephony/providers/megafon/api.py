"""MegaFon PBX commands: makeCall and friends, over both API generations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.providers.base import PbxError


@dataclass(frozen=True)
class PbxUser:
    login: str
    name: str = ""
    ext: str | None = None
    telnum: str | None = None


def _error_message(response: UpstreamResponse) -> str:
    body = response.json()
    if isinstance(body, dict):
        for key in ("message", "error", "description"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    text = response.text.strip()
    return text[:300] if text else f"HTTP {response.status}"


class MegafonClient:
    """Commands to the PBX: `v1` (/crmapi/v1, JSON, X-API-KEY) or `legacy` (/sys/crm_api.wcgp)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        api: Literal["v1", "legacy"] = "v1",
        timeout: float = 10.0,
    ) -> None:
        self.api = api
        self._api_key = api_key
        self._http = UpstreamClient(base_url, timeout=timeout, name="the PBX")

    async def make_call(self, phone: str, user: str) -> str | None:
        """Ring `user` (login, extension or direct number), then `phone`. Returns the call id."""
        if self.api == "v1":
            response = await self._send(
                "POST", "/crmapi/v1/makecall", json_body={"phone": phone, "user": user}
            )
            body = response.json()
            return str(body["callid"]) if isinstance(body, dict) and body.get("callid") else None
        response = await self._send(
            "POST",
            "/sys/crm_api.wcgp",
            form={"cmd": "makeCall", "phone": phone, "user": user, "token": self._api_key},
        )
        return _legacy_call_id(response)

    async def users(self) -> list[PbxUser]:
        if self.api == "v1":
            body = (await self._send("GET", "/crmapi/v1/users")).json()
            items = body.get("items", []) if isinstance(body, dict) else []
            return [
                PbxUser(
                    login=str(item.get("login", "")),
                    name=str(item.get("name") or ""),
                    ext=str(item["ext"]) if item.get("ext") else None,
                    telnum=str(item["telnum"]) if item.get("telnum") else None,
                )
                for item in items
                if isinstance(item, dict) and item.get("login")
            ]
        body = (
            await self._send(
                "POST", "/sys/crm_api.wcgp", form={"cmd": "accounts", "token": self._api_key}
            )
        ).json()
        accounts = body if isinstance(body, list) else []
        return [
            PbxUser(
                login=str(item.get("name", "")),
                name=str(item.get("realName") or ""),
                ext=str(item["ext"]) if item.get("ext") else None,
                telnum=str(item["telnum"]) if item.get("telnum") else None,
            )
            for item in accounts
            if isinstance(item, dict) and item.get("name")
        ]

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        headers = {"X-API-KEY": self._api_key} if self.api == "v1" else None
        try:
            response = await self._http.request(
                method, path, json_body=json_body, form=form, headers=headers
            )
        except UpstreamError as exc:
            raise PbxError(exc.message) from None
        if response.status >= 300:
            raise PbxError(_error_message(response), response.status)
        return response

    async def close(self) -> None:
        await self._http.close()


def _legacy_call_id(response: UpstreamResponse) -> str | None:
    """The legacy makeCall answers "CallID" text, {"CallID": …}, or an object without it."""
    body = response.json()
    if isinstance(body, dict):
        value = body.get("CallID") or body.get("callid")
        return str(value) if value else None
    if isinstance(body, str | int):
        return str(body) or None
    text = response.text.strip()
    return text if text and len(text) <= 200 and " " not in text else None
