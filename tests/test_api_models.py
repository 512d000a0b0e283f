"""The request models of `/api/v1` say what the handlers accept: a value valid by the published
schema is accepted, a refused one is a 400 naming its field; undeclared methods are 405."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.web.api_models import PHONE_NUMBERS, PHONE_PATTERN, STORABLE, FormLeadRequest
from handlers.web.bodies import storable
from storage.db import Database
from telephony.phones import normalize_phone
from tests.conftest import AppClient, AppFactory


@settings(max_examples=500, database=None)
@given(st.from_regex(PHONE_PATTERN, fullmatch=True))
def test_every_phone_the_schema_pattern_allows_is_accepted(written: str) -> None:
    assert re.fullmatch(r"7\d{10}", normalize_phone(written))


@settings(max_examples=300, database=None)
@given(
    st.one_of(
        *(st.integers(number["minimum"], number["maximum"]) for number in PHONE_NUMBERS)
    )
)
def test_every_phone_number_the_schema_allows_is_accepted(number: int) -> None:
    assert re.fullmatch(r"7\d{10}", normalize_phone(str(number)))


@settings(max_examples=300, database=None)
@given(st.from_regex(STORABLE, fullmatch=True).filter(lambda text: len(text) <= 300))
def test_text_the_schema_allows_passes_the_body_checks_and_the_model(text: str) -> None:
    assert storable(text)
    lead = FormLeadRequest.model_validate({"email": "a@b.c", "utm_source": text})
    assert lead.utm_source == (text.strip() or None)


async def _post(client: AppClient, auth: dict[str, str], path: str, body: Any) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=auth)
    return response.status, await response.json()


async def test_a_refused_value_is_a_400_naming_its_field(
    make_client: AppFactory, db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(db)
    for path, body, field in [
        ("/api/v1/megafon_call", {"client_phone": "79004443322"}, "user"),
        ("/api/v1/megafon_call", {"client_phone": True, "user": "andy"}, "client_phone"),
        ("/api/v1/megafon_call", {"client_phone": "79004443322", "user": "x" * 201}, "user"),
        ("/api/v1/calls", {"client_phone": "79004443322", "manager_id": "1"}, "manager_id"),
        ("/api/v1/leads", {"email": "a@b.c", "utm_source": "x" * 301}, "utm_source"),
        ("/api/v1/leads", {"email": ["a@b.c"]}, "email"),
        ("/api/v1/managers", {"telegram_user_id": "5"}, "telegram_user_id"),
        ("/api/v1/managers", {"telegram_user_id": 2**63}, "telegram_user_id"),
    ]:
        status, answer = await _post(client, auth, path, body)
        assert status == 400, (path, body, answer)
        assert answer["field"] == field, (path, body, answer)
        assert answer["problems"][0]["field"] == field and answer["detail"]
    status, answer = await _post(client, auth, "/api/v1/leads", {"phone": "12"})
    assert (status, answer["error"], answer["field"]) == (400, "Invalid phone", "phone")
    status, answer = await _post(
        client, auth, "/api/v1/calls", {"client_phone": "12", "manager_id": 1}
    )  # the call requests always said "Invalid parameters" for a bad phone
    assert (status, answer["error"], answer["field"]) == (400, "Invalid parameters", "client_phone")
    # A JSON number without a fraction is an integer, as JSON Schema says.
    status, answer = await _post(
        client, auth, "/api/v1/leads", {"phone": 79101234567.0, "name": "Анна"}
    )
    assert status == 201, answer
    for query, field in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("after_id=9223372036854775808", "after_id"),
    ]:
        response = await client.get(f"/api/v1/clients/1/dialog?{query}", headers=auth)
        assert response.status == 400, query
        assert (await response.json())["field"] == field


async def test_megafon_call_without_a_pbx_is_503_naming_the_settings(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(any_db, megafon_url=None)
    body = {"client_phone": "8 900 444-33-22", "user": "andy"}
    status, answer = await _post(client, auth, "/api/v1/megafon_call", body)
    assert status == 503
    assert answer["error"] == "PBX not configured"
    assert answer["settings"] == ["TRUBKA_MEGAFON_URL", "TRUBKA_MEGAFON_API_KEY"]
    # Bad input is still bad input first.
    body["client_phone"] = "12"
    assert (await _post(client, auth, "/api/v1/megafon_call", body))[0] == 400
    # Nothing was stored for the call that could not be placed.
    calls = await (await client.get("/api/v1/calls", headers=auth)).json()
    assert calls["calls"] == []


async def test_report_days_outside_the_supported_years_are_400_not_500(
    make_client: AppFactory, any_db: Database, auth: dict[str, str]
) -> None:
    client = await make_client(any_db)
    for day in ("0001-01-01", "9999-12-31", "1999-12-31", "2026-02-30"):
        response = await client.get(
            "/api/v1/reports/calls", params={"from": day, "to": day}, headers=auth
        )
        assert response.status == 400, day
        assert (await response.json())["field"] == "from"
    response = await client.get(
        "/api/v1/reports/calls", params={"from": "2000-01-01", "to": "2000-01-01"}, headers=auth
    )
    assert response.status == 200
