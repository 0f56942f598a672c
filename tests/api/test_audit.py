"""The audit trail: who read or changed which patient, journey, segment..., when and from where; the
refused attempts too; append-only in the database; ids only; queryable by an administrator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient

JOURNEY = {
    "key": "audited",
    "version": 1,
    "name": "Audited",
    "steps": [{"id": "hello", "send": {"channel": "sms", "body": "Hello"}}],
}


async def audit(api: httpx.AsyncClient, **filters: Any) -> list[dict[str, Any]]:
    answer = await api.get("/v1/audit", params=filters)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def key_for(api: httpx.AsyncClient, role: str) -> str:
    answer = await api.post("/v1/api-keys", json={"name": f"{role}-desk", "roles": [role]})
    return str(answer.json()["key"])


async def test_reading_a_patient_records_who_when_from_where_and_how_it_ended(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    patient = await load_synthea_patient(sessions)
    nurse = await key_for(api, "healthcare")

    answer = await api.get(
        f"/v1/patients/{ABDUL_PATIENT_ID}", headers={"X-API-Key": nurse, "User-Agent": "ward-app/2"}
    )

    assert answer.status_code == 200
    [row] = await audit(api, resource_type="patient", resource_id=ABDUL_PATIENT_ID)
    assert row["actor"] == "api_key:healthcare-desk"
    assert row["actor_kind"] == "api_key"
    assert row["actor_key_id"] == nurse.split("_")[1]
    assert row["actor_roles"] == ["healthcare"]
    assert (row["action"], row["method"], row["route"], row["status_code"]) == (
        "read",
        "GET",
        "/v1/patients/{patient_id}",
        200,
    )
    assert row["client_ip"] == "127.0.0.1"
    assert row["user_agent"] == "ward-app/2"
    assert row["occurred_at"]
    assert patient["name"][0]["family"] not in str(row)


async def test_a_published_journey_is_recorded_with_the_key_from_the_answer(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    [row] = await audit(api, resource_type="journey", resource_id="audited")
    assert (row["action"], row["actor"], row["status_code"]) == ("publish", "dev", 201)


async def test_a_refused_attempt_is_recorded_and_an_anonymous_one_is_not(
    api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient
) -> None:
    marketing = await key_for(api, "marketing")
    assert (await api.get("/v1/patients/someone", headers={"X-API-Key": marketing})).status_code == 403
    assert (await anonymous_api.get("/v1/patients/someone")).status_code == 401

    [row] = await audit(api, resource_type="patient", resource_id="someone")
    assert (row["actor"], row["status_code"]) == ("api_key:marketing-desk", 403)


async def test_the_client_address_is_taken_from_forwarding_headers_only_behind_a_trusted_proxy(
    api: httpx.AsyncClient,
) -> None:
    await api.get("/v1/journeys/none", headers={"X-Forwarded-For": "198.51.100.7"})
    [row] = await audit(api, resource_type="journey", resource_id="none")
    assert row["client_ip"] == "127.0.0.1"


async def test_the_audit_trail_is_filtered_by_actor_action_and_time(api: httpx.AsyncClient) -> None:
    await api.post("/v1/journeys", json=JOURNEY)
    await api.get("/v1/journeys/audited")
    rows = await audit(api, resource_type="journey", resource_id="audited")
    assert [row["action"] for row in rows] == ["read", "publish"]  # newest first
    assert [row["action"] for row in await audit(api, action="publish")] == ["publish"]
    assert await audit(api, actor="api_key:nobody") == []
    assert await audit(api, resource_type="journey", until=rows[-1]["occurred_at"]) == []
    older = await audit(api, resource_type="journey", before_id=rows[0]["id"])
    assert [row["action"] for row in older] == ["publish"]


async def test_only_an_administrator_reads_the_audit_trail(api: httpx.AsyncClient) -> None:
    for role in ("healthcare", "operator", "fhir_admin"):
        assert (
            await api.get("/v1/audit", headers={"X-API-Key": await key_for(api, role)})
        ).status_code == 403


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events", "TRUNCATE audit_events"],
)
async def test_the_database_refuses_to_change_or_remove_audit_rows(
    api: httpx.AsyncClient, engine: AsyncEngine, statement: str
) -> None:
    await api.get("/v1/journeys/none")
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM audit_events"))).scalar() == 1
