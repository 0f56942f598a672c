"""Dynamic segments drive segment-based journeys: joining the segment enrolls the patient, leaving it
ends the enrollment with outcome `segment_exit` when the journey has that exit rule (real API, worker
and Temporal dev server)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from models.segment_runs import RefreshSegmentsInput, RefreshSegmentsResult
from models.tables import ClinicalEncounter, Patient
from models.workflow_names import REFRESH_SEGMENTS_WORKFLOW
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

START = datetime(2024, 6, 1, tzinfo=UTC)
SEGMENT = {
    "key": "recently-discharged",
    "name": "Discharged in the last 7 days",
    "criteria": {"encounter": {"class": "IMP", "discharged_within": "P7D"}},
}


def journey(key: str, exit_rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": key,
        "version": 1,
        "name": key,
        "entry": {"segment": "recently-discharged"},
        "exit": exit_rules,
        "steps": [{"id": "rest", "wait": {"duration": "P30D"}}],
    }


async def enrollments(api: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/v1/enrollments", params={"journey_key": key})).json()[
        "items"
    ]
    return items


async def test_entering_enrolls_and_leaving_exits_with_segment_exit(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [
                Patient(id="ann", version_id="1", birth_date=date(1950, 1, 1)),
                ClinicalEncounter(
                    resource_id="e1", patient_id="ann", class_code="IMP", end_at=START - timedelta(days=1)
                ),
            ]
        )
    assert (await api.post("/v1/segments", json=SEGMENT)).status_code == 201
    leaving = journey("discharge-care", [{"event": "segment.exited", "outcome": "segment_exit"}])
    staying = journey("discharge-survey", [])
    for definition in (leaving, staying):
        assert (await api.post("/v1/journeys", json=definition)).status_code == 201

    entered = (
        await api.post("/v1/segments/recently-discharged/refresh", params={"as_of": START.isoformat()})
    ).json()
    again = (
        await api.post("/v1/segments/recently-discharged/refresh", params={"as_of": START.isoformat()})
    ).json()
    assert (entered["entered"], entered["enrolled"]) == (1, 2)
    assert (again["entered"], again["enrolled"]) == (0, 0)
    [care] = await enrollments(api, "discharge-care")
    [survey] = await enrollments(api, "discharge-survey")
    assert (care["patient_id"], care["status"], survey["status"]) == ("ann", "running", "running")

    later = (START + timedelta(days=10)).isoformat()
    left = (await api.post("/v1/segments/recently-discharged/refresh", params={"as_of": later})).json()
    assert (left["exited"], left["exits_signalled"]) == (1, 1)  # only the journey that exits on it

    async def exited() -> dict[str, Any] | None:
        detail: dict[str, Any] = (await api.get(f"/v1/enrollments/{care['enrollment_id']}")).json()
        return detail if detail["status"] == "exited" else None

    assert (await eventually(exited))["outcome"] == "segment_exit"
    assert (await api.get(f"/v1/enrollments/{survey['enrollment_id']}")).json()["status"] == "running"
    members = (await api.get("/v1/segments/recently-discharged/members")).json()["members"]
    assert members == []


async def test_the_refresh_workflow_refreshes_every_segment(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
    api_settings: Settings,
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [
                Patient(id="bob", version_id="1"),
                ClinicalEncounter(resource_id="e2", patient_id="bob", class_code="IMP", end_at=START),
            ]
        )
    assert (await api.post("/v1/segments", json=SEGMENT)).status_code == 201
    assert (
        await api.post("/v1/segments", json={**SEGMENT, "key": "anyone", "criteria": {"age": {"gte": 0}}})
    ).status_code == 201

    result = await dev_server.client.execute_workflow(
        REFRESH_SEGMENTS_WORKFLOW,
        RefreshSegmentsInput(as_of=START + timedelta(hours=1)),
        id=f"refresh-{uuid.uuid4()}",
        task_queue=api_settings.temporal_task_queue,
        result_type=RefreshSegmentsResult,
    )
    assert [(s.key, s.entered, s.exited) for s in result.segments] == [
        ("anyone", 0, 0),
        ("recently-discharged", 1, 0),
    ]


async def test_an_event_the_segment_refreshes_on_enrolls_the_patient_at_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live = {**SEGMENT, "refresh_on": ["fhir.encounter", "discharge.completed"]}
    assert (await api.post("/v1/segments", json=live)).status_code == 201
    assert (await api.post("/v1/journeys", json=journey("discharge-care", []))).status_code == 201
    patient = {"resourceType": "Patient", "id": "cara", "meta": {"versionId": "1"}, "birthDate": "1950-02-02"}
    await api.post("/v1/fhir/import", json=patient, params={"triggers": "false"})
    discharged = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    encounter = {
        "resourceType": "Encounter",
        "id": "cara-stay",
        "meta": {"versionId": "1"},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/cara"},
        "period": {"start": discharged, "end": discharged},
    }
    assert (await api.post("/v1/fhir/notifications", json=encounter)).status_code == 200

    async def enrolled() -> list[dict[str, Any]] | None:
        return await enrollments(api, "discharge-care") or None

    [care] = await eventually(enrolled)
    assert care["patient_id"] == "cara"
    assert (await api.get("/v1/segments/recently-discharged/members")).json()["members"] == ["cara"]

    # An event that refreshes the segment but changes nothing enrolls no one again.
    trigger = {"type": "discharge.completed", "patient_id": "cara", "data": {}, "id": "discharge-1"}
    assert (await api.post("/v1/triggers", json=trigger)).status_code == 202
    assert len(await enrollments(api, "discharge-care")) == 1


async def test_the_schedule_skips_a_segment_refreshed_within_its_refresh_every(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
    api_settings: Settings,
) -> None:
    assert (await api.post("/v1/segments", json={**SEGMENT, "refresh_every": "P1D"})).status_code == 201
    assert (
        await api.post("/v1/segments", json={**SEGMENT, "key": "anyone", "criteria": {"age": {"gte": 0}}})
    ).status_code == 201

    async def scheduled_pass(at: datetime) -> list[str]:
        result = await dev_server.client.execute_workflow(
            REFRESH_SEGMENTS_WORKFLOW,
            RefreshSegmentsInput(as_of=at),
            id=f"refresh-{uuid.uuid4()}",
            task_queue=api_settings.temporal_task_queue,
            result_type=RefreshSegmentsResult,
        )
        return [summary.key for summary in result.segments]

    assert await scheduled_pass(START) == ["anyone", "recently-discharged"]
    assert await scheduled_pass(START + timedelta(minutes=15)) == ["anyone"]
    assert await scheduled_pass(START + timedelta(days=1)) == ["anyone", "recently-discharged"]


async def test_a_large_refresh_enrolls_its_newcomers_in_batches(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        for index in range(700):
            session.add(Patient(id=f"n{index:04d}", version_id="1"))
            session.add(
                ClinicalEncounter(
                    resource_id=f"s{index}", patient_id=f"n{index:04d}", class_code="IMP", end_at=START
                )
            )
    assert (await api.post("/v1/segments", json=SEGMENT)).status_code == 201
    assert (await api.post("/v1/journeys", json=journey("discharge-care", []))).status_code == 201

    refreshed = (
        await api.post("/v1/segments/recently-discharged/refresh", params={"as_of": START.isoformat()})
    ).json()
    assert (refreshed["entered"], refreshed["enrolled"]) == (700, 700)
    listed = (
        await api.get("/v1/enrollments", params={"journey_key": "discharge-care", "limit": 1000})
    ).json()
    assert len({item["patient_id"] for item in listed["items"]}) == 700
