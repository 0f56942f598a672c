"""Patient events from clinical systems: journeys entered by an event, and Twilio chosen by settings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from aftercare.settings import Settings
from models.tables import ParkedItem
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import with_twilio
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

NO_SHOW_JOURNEY = {
    "key": "missed-appointment",
    "version": 1,
    "name": "Missed appointment re-engagement",
    "entry": {"event": {"type": "appointment.no_show", "criteria": "%event.data.clinic.exists()"}},
    "exit": [{"event": "appointment.booked", "outcome": "rebooked"}],
    "steps": [
        {
            "id": "nudge",
            "send": {
                "channel": "sms",
                "body": "Hi {{ patient.given }}, we missed you at {{ trigger.data.clinic }}. "
                "Reply to rebook.",
            },
        },
        {"id": "await", "wait_for": {"event": "appointment.booked", "timeout": "P7D"}},
    ],
}


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    """The API and worker of these tests send SMS through Twilio (Prism serving Twilio's own spec)."""
    return with_twilio(settings, "events-twilio", twilio_mock)


async def enrollment(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def test_an_event_starts_the_journey_it_enters_and_later_events_reach_it(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert (await api.post("/v1/journeys", json=NO_SHOW_JOURNEY)).status_code == 201
    no_show = {
        "type": "appointment.no_show",
        "patient_id": ABDUL_PATIENT_ID,
        "id": "ehr-evt-1",
        "data": {"clinic": "Cardiology"},
    }

    started = (await api.post("/v1/triggers", json=no_show)).json()
    assert started["delivered_to"] == []
    [enrollment_id] = started["started"]
    assert (await api.post("/v1/triggers", json=no_show)).json() == started

    async def waiting() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["current_step"] == "await" else None

    await eventually(waiting)
    [sms] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert sms["body"] == "Hi Abdul, we missed you at Cardiology. Reply to rebook."
    assert (sms["provider"], sms["status"]) == ("twilio", "queued")
    assert (sms["provider_message_id"] or "").startswith("SM")

    booked = (
        await api.post("/v1/triggers", json={"type": "appointment.booked", "patient_id": ABDUL_PATIENT_ID})
    ).json()
    assert booked["delivered_to"] == [enrollment_id]

    async def finished() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] != "running" else None

    done = await eventually(finished)
    assert (done["status"], done["outcome"]) == ("exited", "rebooked")


async def test_an_event_whose_entry_criteria_do_not_hold_starts_nothing(api: httpx.AsyncClient) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json=NO_SHOW_JOURNEY)
    answer = await api.post(
        "/v1/triggers", json={"type": "appointment.no_show", "patient_id": ABDUL_PATIENT_ID}
    )
    assert answer.status_code == 202
    assert answer.json()["started"] == []


async def test_an_event_for_an_unknown_patient_is_parked_and_delivered_when_repeated_after_the_patient_arrives(
    api: httpx.AsyncClient, sessions: Any
) -> None:
    await api.post("/v1/journeys", json=NO_SHOW_JOURNEY)
    event = {
        "type": "appointment.no_show",
        "patient_id": ABDUL_PATIENT_ID,
        "id": "no-show-before-the-patient",
        "data": {"clinic": "Cardiology"},
    }

    first = await api.post("/v1/triggers", json=event)
    again = await api.post("/v1/triggers", json=event)
    async with sessions() as session:
        parked = (await session.scalars(select(ParkedItem).where(ParkedItem.source == "event-trigger"))).all()
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    delivered = await api.post("/v1/triggers", json=event)

    assert (first.status_code, first.json()["started"]) == (202, [])
    assert "not in the patient store" in first.json()["parked"]
    assert again.json()["parked"] == first.json()["parked"]
    assert [item.reference for item in parked] == ["event no-show-before-the-patient"]
    assert delivered.status_code == 202
    assert delivered.json()["parked"] is None
    assert len(delivered.json()["started"]) == 1


async def test_malformed_events_are_refused(api: httpx.AsyncClient) -> None:
    bad_type = await api.post("/v1/triggers", json={"type": "Not A Type!", "patient_id": ABDUL_PATIENT_ID})
    extra = await api.post(
        "/v1/triggers", json={"type": "sms.reply", "patient_id": ABDUL_PATIENT_ID, "colour": 1}
    )
    assert (bad_type.status_code, bad_type.json()["detail"][0]["loc"]) == (422, ["body", "type"])
    assert extra.status_code == 422
