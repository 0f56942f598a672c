"""Events drive journeys: `event.registered` enters one, `event.checked_in` reaches its wait."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_events import an_event
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

CLASS_FOLLOW_UP = {
    "key": "class-follow-up",
    "version": 1,
    "name": "Diabetes class: confirm and follow up",
    "entry": {"event": {"type": "event.registered"}},
    "steps": [
        {
            "id": "confirm",
            "send": {
                "channel": "sms",
                "body": "Hi {{ patient.given }}, you are booked ({{ trigger.data.session_id }}).",
            },
        },
        {
            "id": "await-check-in",
            "wait_for": {"event": "event.checked_in", "timeout": "P30D", "on_timeout": "missed"},
        },
        {"id": "thanks", "send": {"channel": "sms", "body": "Thanks for coming!"}, "goto": "done"},
        {"id": "missed", "send": {"channel": "sms", "body": "We missed you."}},
        {"id": "done", "end": {"outcome": "completed"}},
    ],
}


async def test_registering_starts_the_journey_and_checking_in_moves_it_on(api: httpx.AsyncClient) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert (await api.post("/v1/journeys", json=CLASS_FOLLOW_UP)).status_code == 201
    await api.post("/v1/events", json=an_event())
    await api.post("/v1/events/diabetes-class/publish")

    registration = (
        await api.post(
            "/v1/events/diabetes-class/registrations",
            json={"patient_id": ABDUL_PATIENT_ID, "session_id": "morning"},
        )
    ).json()

    async def waiting() -> dict[str, Any] | None:
        [enrollment] = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()["enrollments"]
        detail: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment['enrollment_id']}")).json()
        return detail if detail["current_step"] == "await-check-in" else None

    enrollment = await eventually(waiting)
    await api.post(f"/v1/events/diabetes-class/registrations/{registration['registration_id']}/check-in")

    async def finished() -> dict[str, Any] | None:
        detail: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment['enrollment_id']}")).json()
        return detail if detail["status"] == "completed" else None

    await eventually(finished)
    bodies = [
        m["body"]
        for m in (
            await api.get("/v1/messages", params={"enrollment_id": enrollment["enrollment_id"]})
        ).json()["items"]
    ]
    assert sorted(bodies) == ["Hi Abdul, you are booked (morning).", "Thanks for coming!"]
