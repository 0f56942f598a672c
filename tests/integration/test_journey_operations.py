"""Steering journeys through the API on the real dev server: tasks, listing, pause and resume, batch
enrollment, re-entry rules under concurrency, the library, and the Temporal UI's summary."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from journeys.catalogue import library
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

CALL_JOURNEY = {
    "key": "call-back",
    "version": 1,
    "name": "Call back",
    "steps": [
        {
            "id": "call",
            "task": {"queue": "care-coordinators", "title": "Call {{ patient.name }}", "due": "PT4H"},
        },
        {"id": "await-call", "wait_for": {"event": "task.completed", "timeout": "P1D"}},
        {
            "id": "thanks",
            "send": {"channel": "sms", "body": "Thanks for talking to us, {{ patient.given }}."},
        },
    ],
}


async def enrollment(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def enroll(api: httpx.AsyncClient, journey: dict[str, Any], patient_id: str = ABDUL_PATIENT_ID) -> str:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert (await api.post("/v1/journeys", json=journey)).status_code in (200, 201)
    created = await api.post(f"/v1/journeys/{journey['key']}/enrollments", json={"patient_id": patient_id})
    enrollment_id: str = created.json()["enrollment_id"]
    return enrollment_id


async def at_step(api: httpx.AsyncClient, enrollment_id: str, step: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["current_step"] == step else None

    result: dict[str, Any] = await eventually(check)
    return result


async def test_a_task_appears_in_its_queue_and_completing_it_moves_the_journey_on(
    api: httpx.AsyncClient,
) -> None:
    enrollment_id = await enroll(api, CALL_JOURNEY)
    await at_step(api, enrollment_id, "await-call")
    [task] = (await api.get("/v1/tasks", params={"queue": "care-coordinators"})).json()["items"]
    assert (task["title"], task["status"], task["enrollment_id"]) == (
        "Call Abdul Koepp",
        "open",
        enrollment_id,
    )

    done = await api.post(
        f"/v1/tasks/{task['id']}/complete", json={"outcome": "reached", "completed_by": "nurse-7"}
    )
    again = await api.post(f"/v1/tasks/{task['id']}/complete", json={})
    assert (done.status_code, done.json()["status"], done.json()["outcome"]) == (200, "completed", "reached")
    assert again.status_code == 409
    assert (await api.post("/v1/tasks/nope/complete", json={})).status_code == 404

    async def completed() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] == "completed" else None

    await eventually(completed)
    assert (await api.get("/v1/tasks", params={"queue": "care-coordinators"})).json()["items"] == []
    finished = (
        await api.get("/v1/tasks", params={"queue": "care-coordinators", "status": "completed"})
    ).json()
    assert [item["completed_by"] for item in finished["items"]] == ["nurse-7"]


async def test_enrollments_are_listed_from_the_database_by_journey_patient_and_status(
    api: httpx.AsyncClient,
) -> None:
    enrollment_id = await enroll(api, CALL_JOURNEY)
    await at_step(api, enrollment_id, "await-call")
    listed = (
        await api.get("/v1/enrollments", params={"journey_key": "call-back", "status": "running"})
    ).json()
    assert [(item["enrollment_id"], item["current_step"]) for item in listed["items"]] == [
        (enrollment_id, "await-call")
    ]
    assert (await api.get("/v1/enrollments", params={"patient_id": "nobody"})).json()["items"] == []
    assert (await api.get("/v1/enrollments", params={"status": "sideways"})).status_code == 422


async def test_pause_holds_the_journey_and_resume_lets_it_go_on(
    api: httpx.AsyncClient, dev_server: WorkflowEnvironment
) -> None:
    enrollment_id = await enroll(api, CALL_JOURNEY)
    await at_step(api, enrollment_id, "await-call")
    paused = await api.post(
        f"/v1/enrollments/{enrollment_id}/pause", json={"reason": "patient asked for a break"}
    )
    assert paused.status_code == 200
    assert paused.json() == {
        "enrollment_id": enrollment_id,
        "status": "running",
        "paused": True,
        "current_step": "await-call",
    }
    assert (await api.post(f"/v1/enrollments/{enrollment_id}/pause")).status_code == 409

    [task] = (await api.get("/v1/tasks", params={"queue": "care-coordinators"})).json()["items"]
    await api.post(f"/v1/tasks/{task['id']}/complete", json={})
    await asyncio.sleep(1.0)
    held = await enrollment(api, enrollment_id)
    assert held["status"] == "running"
    assert [item["step"] for item in held["history"]] == ["call", "await-call"]
    listed = (await api.get("/v1/enrollments", params={"journey_key": "call-back"})).json()["items"]
    assert listed[0]["paused"] is True
    description = await dev_server.client.get_workflow_handle(f"enrollment-{enrollment_id}").describe()
    assert await description.static_summary() == "Call back (v1)"

    resumed = await api.post(f"/v1/enrollments/{enrollment_id}/resume")
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)
    assert (await api.post(f"/v1/enrollments/{enrollment_id}/resume")).status_code == 409

    async def completed() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] == "completed" else None

    done = await eventually(completed)
    assert [item["step"] for item in done["history"]] == ["call", "await-call", "thanks"]


async def test_many_patients_are_enrolled_in_one_call(api: httpx.AsyncClient) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json=CALL_JOURNEY)
    body = {
        "patients": [
            {"patient_id": ABDUL_PATIENT_ID},
            {"patient_id": "nobody"},
            {"patient_id": ABDUL_PATIENT_ID},
        ],
        "context": {"campaign": "winter"},
    }
    answer = await api.post("/v1/journeys/call-back/enrollments/batch", json=body)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [item["result"] for item in results] == ["created", "unknown_patient", "existing"]
    assert results[0]["enrollment_id"] == results[2]["enrollment_id"]
    assert answer.json()["created"] == 1
    too_many = {"patients": [{"patient_id": f"p{n}"} for n in range(1001)]}
    assert (await api.post("/v1/journeys/call-back/enrollments/batch", json=too_many)).status_code == 422


async def test_reentry_never_refuses_a_second_enrollment_even_when_requests_race(
    api: httpx.AsyncClient,
) -> None:
    once = {
        "key": "once",
        "version": 1,
        "name": "Once",
        "reentry": "never",
        "steps": [{"id": "hello", "send": {"channel": "sms", "body": "Only once"}}],
    }
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json=once)
    answers = await asyncio.gather(
        *(api.post("/v1/journeys/once/enrollments", json={"patient_id": ABDUL_PATIENT_ID}) for _ in range(6))
    )
    assert sorted(answer.status_code for answer in answers).count(201) == 1
    [enrollment_id] = {
        answer.json()["enrollment_id"] for answer in answers if answer.status_code in (200, 201)
    }

    async def completed() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] == "completed" else None

    await eventually(completed)
    later = await api.post("/v1/journeys/once/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    assert later.status_code == 409
    assert "never" in later.json()["detail"]


async def test_reentry_always_lets_concurrent_enrollments_run_side_by_side(api: httpx.AsyncClient) -> None:
    always = {**CALL_JOURNEY, "key": "always", "reentry": "always"}
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json=always)
    answers = await asyncio.gather(
        *(
            api.post("/v1/journeys/always/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
            for _ in range(3)
        )
    )
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert len({answer.json()["enrollment_id"] for answer in answers}) == 3


async def test_the_library_lists_and_installs_ready_made_journeys(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/v1/library")).json()["items"]
    assert [item["key"] for item in listed] == [entry.key for entry in library()]
    reminder = next(item for item in listed if item["key"] == "appointment-reminder")
    assert reminder["entry"]["fhir"]["resource"] == "Appointment"
    installed = await api.post("/v1/library/appointment-reminder/install")
    again = await api.post("/v1/library/appointment-reminder/install")
    assert (installed.status_code, again.status_code) == (201, 200)
    assert installed.json()["templates"] == ["appt-confirmed", "appt-day-before", "appt-reminder"]
    assert (await api.get("/v1/journeys/appointment-reminder")).json()["version"] == 1
    assert (await api.post("/v1/library/nope/install")).status_code == 404
    assert (await api.post("/v1/library/post-discharge-surveys/install")).status_code == 201
    questionnaires = (await api.get("/v1/questionnaires")).json()["items"]
    assert sorted(q["url"].rsplit("/", 1)[1] for q in questionnaires) == [
        "patient-experience",
        "post-discharge-48h",
    ]


async def test_code_journeys_are_listed_but_cannot_be_published_as_definitions(
    api: httpx.AsyncClient,
) -> None:
    journeys = (await api.get("/v1/journeys")).json()["items"]
    assert "discharge-callback" in [item["key"] for item in journeys]
    refused = await api.post("/v1/journeys", json={"key": "sneaky", "version": 1, "name": "x", "code": True})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "code_journey"
