"""The first scenario of the product brief, end to end on the real Temporal dev server and PostgreSQL:
an Observation is created, the patient gets one personalised SMS."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.demo.loader import demo_observation
from models.tables import ParkedItem
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle

pytestmark = pytest.mark.usefixtures("worker")

TEMPLATE = """
key: hba1c-high
channel: sms
locale: en
body: "Hi {{ patient.given }}, your recent lab result needs follow-up. Reply YES for a call. Reply STOP to opt out."
"""
JOURNEY = """
key: hba1c-followup
version: 1
name: High HbA1c follow-up
entry:
  fhir:
    resource: Observation
    interactions: [create, update]
    criteria: "Observation.code.coding.where(system='http://loinc.org' and code='4548-4').exists() and Observation.valueQuantity.value > 9"
exit:
  - event: appointment.booked
    outcome: goal_reached
steps:
  - id: notify
    send: {template: hba1c-high}
  - id: await-reply
    wait_for: {event: sms.reply, timeout: P2D, on_timeout: escalate}
  - id: route
    branch:
      - when: "%event.data.body.upper() = 'YES'"
        goto: thanks
      - otherwise: escalate
  - id: escalate
    send: {channel: sms, body: "{{ patient.given }}, your care team will call you today."}
    goto: done
  - id: thanks
    send: {channel: sms, body: "Thanks {{ patient.given }}, your care team will call you."}
  - id: done
    end: {outcome: completed}
"""
YAML = {"content-type": "application/yaml"}


async def set_up(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/templates", content=TEMPLATE, headers=YAML)).status_code == 201
    assert (await api.post("/v1/journeys", content=JOURNEY, headers=YAML)).status_code == 201
    imported = await api.post("/v1/fhir/import", json=synthea_bundle())
    assert imported.status_code == 200


async def messages(api: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/v1/messages", params=filters)).json()["items"]
    return items


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value


async def enrollment_of(api: httpx.AsyncClient) -> dict[str, Any]:
    profile = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()
    [enrollment] = profile["enrollments"]
    detail: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment['enrollment_id']}")).json()
    return detail


async def test_an_hba1c_observation_sends_exactly_one_personalised_sms(
    api: httpx.AsyncClient, dev_server: WorkflowEnvironment
) -> None:
    await set_up(api)
    observation = demo_observation(ABDUL_PATIENT_ID, value=9.6)

    first = await api.post("/v1/fhir/notifications", json=observation)
    again = await api.post("/v1/fhir/notifications", json=observation)
    assert (first.status_code, first.json()["triggered"]) == (200, 1)
    assert again.json()["triggered"] == 0

    [sms] = await eventually(lambda: messages(api, patient_id=ABDUL_PATIENT_ID))
    assert sms["channel"] == "sms"
    assert sms["to"] == "+15559784581"
    assert sms["status"] == "sent"
    assert sms["provider"] == "outbox"
    assert sms["body"].startswith("Hi Abdul,")

    enrollment = await eventually(
        lambda: _when(enrollment_of(api), lambda e: e["current_step"] == "await-reply")
    )
    assert (enrollment["status"], enrollment["journey_key"]) == ("running", "hba1c-followup")
    assert enrollment["trigger"]["resource"]["resource_id"] == observation["id"]
    assert [item["step"] for item in enrollment["history"]] == ["notify"]

    async def visible() -> list[str]:  # visibility is eventually consistent
        query = f"PatientId = '{ABDUL_PATIENT_ID}' AND JourneyKey = 'hba1c-followup' AND CurrentStep = 'await-reply'"
        return [execution.id async for execution in dev_server.client.list_workflows(query)]

    assert await eventually(visible) == [f"enrollment-{enrollment['enrollment_id']}"]
    await asyncio.sleep(0.5)
    assert len(await messages(api, patient_id=ABDUL_PATIENT_ID)) == 1


async def test_a_yes_reply_from_the_clinical_system_completes_the_journey(api: httpx.AsyncClient) -> None:
    await set_up(api)
    await api.post("/v1/fhir/notifications", json=demo_observation(ABDUL_PATIENT_ID))
    enrollment = await eventually(
        lambda: _when(enrollment_of(api), lambda e: e["current_step"] == "await-reply")
    )

    reply = {"type": "sms.reply", "patient_id": ABDUL_PATIENT_ID, "data": {"body": "yes"}, "id": "reply-1"}
    delivered = await api.post("/v1/triggers", json=reply)
    repeated = await api.post("/v1/triggers", json=reply)
    assert delivered.status_code == 202
    assert delivered.json()["delivered_to"] == [enrollment["enrollment_id"]]
    assert repeated.json() == delivered.json()

    done = await eventually(lambda: _when(enrollment_of(api), lambda e: e["status"] == "completed"))
    assert [item["step"] for item in done["history"]] == ["notify", "await-reply", "route", "thanks", "done"]
    bodies = [m["body"] for m in await messages(api, enrollment_id=enrollment["enrollment_id"])]
    assert len(bodies) == 2
    assert bodies[0].startswith("Thanks Abdul")


async def test_an_exit_event_ends_the_journey_with_its_goal(api: httpx.AsyncClient) -> None:
    await set_up(api)
    await api.post("/v1/fhir/notifications", json=demo_observation(ABDUL_PATIENT_ID))
    await eventually(lambda: _when(enrollment_of(api), lambda e: e["current_step"] == "await-reply"))
    booked = {"type": "appointment.booked", "patient_id": ABDUL_PATIENT_ID}
    assert (await api.post("/v1/triggers", json=booked)).status_code == 202

    done = await eventually(lambda: _when(enrollment_of(api), lambda e: e["status"] != "running"))
    assert (done["status"], done["outcome"]) == ("exited", "goal_reached")


async def test_simultaneous_copies_of_one_observation_start_one_enrollment(api: httpx.AsyncClient) -> None:
    await set_up(api)
    observation = demo_observation(ABDUL_PATIENT_ID)
    answers = await asyncio.gather(*(api.post("/v1/fhir/notifications", json=observation) for _ in range(8)))
    assert all(answer.status_code == 200 for answer in answers)
    assert sum(answer.json()["triggered"] for answer in answers) == 1
    await eventually(lambda: messages(api, patient_id=ABDUL_PATIENT_ID))
    await asyncio.sleep(0.5)
    assert len(await messages(api, patient_id=ABDUL_PATIENT_ID)) == 1


async def test_a_value_below_the_threshold_starts_nothing(api: httpx.AsyncClient) -> None:
    await set_up(api)
    response = await api.post("/v1/fhir/notifications", json=demo_observation(ABDUL_PATIENT_ID, value=7.2))
    assert response.json()["triggered"] == 0
    assert (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()["enrollments"] == []


async def test_an_observation_for_an_unknown_patient_is_parked_with_the_reason(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await set_up(api)
    response = await api.post("/v1/fhir/notifications", json=demo_observation("not-in-the-store"))
    assert (response.status_code, response.json()["triggered"]) == (200, 0)
    async with sessions() as session:
        [parked] = list(await session.scalars(select(ParkedItem)))
    assert parked.reference is not None
    assert parked.reference.startswith("Observation/demo-hba1c-1/_history/")
    assert parked.reason == "patient not-in-the-store is not in the patient store"


async def test_manual_enrollment_is_idempotent_while_running_and_cancellable(api: httpx.AsyncClient) -> None:
    await set_up(api)
    body = {"patient_id": ABDUL_PATIENT_ID, "context": {"source": "discharge-desk"}}
    first = await api.post("/v1/journeys/hba1c-followup/enrollments", json=body)
    second = await api.post("/v1/journeys/hba1c-followup/enrollments", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["enrollment_id"] == second.json()["enrollment_id"]
    enrollment_id = first.json()["enrollment_id"]

    await eventually(lambda: _when(enrollment_of(api), lambda e: e["current_step"] == "await-reply"))
    assert (await api.post(f"/v1/enrollments/{enrollment_id}/cancel")).status_code == 202
    done = await eventually(lambda: _when(enrollment_of(api), lambda e: e["status"] == "cancelled"))
    assert done["outcome"] == "cancelled"
    assert (await api.post(f"/v1/enrollments/{enrollment_id}/cancel")).status_code == 409

    unknown = await api.post("/v1/journeys/hba1c-followup/enrollments", json={"patient_id": "nobody"})
    assert unknown.status_code == 404


async def _when(value: Any, predicate: Any) -> Any:
    resolved = await value
    return resolved if predicate(resolved) else None
