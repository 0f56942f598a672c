"""A journey calls the patient end to end: the `call` step places the call through the real Twilio SDK
(against Prism serving Twilio's spec), Twilio's signed webhooks fetch the TwiML and post the keys
pressed, `voice.answered` reaches the waiting journey, and it branches on the answer (contract §6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aftercare.settings import Settings
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import with_twilio
from tests.integration.test_observation_to_sms import eventually
from tests.voice_calls import TWO_QUESTIONS, twilio_says

pytestmark = pytest.mark.usefixtures("worker")

CALL_SID = "CA" + "3" * 32
CHECK_CALL: dict[str, Any] = {
    "key": "check-call",
    "version": 1,
    "name": "Post-discharge check call",
    "steps": [
        {"id": "check-call", "call": TWO_QUESTIONS},
        {
            "id": "await-call",
            "wait_for": {"event": "voice.answered", "timeout": "PT2H", "on_timeout": "no-answer"},
        },
        {
            "id": "route",
            "branch": [
                {"when": "%event.data.answers.feeling = '2'", "goto": "escalate"},
                {"otherwise": "done"},
            ],
        },
        {
            "id": "escalate",
            "task": {
                "queue": "nurses",
                "title": "Call {{ patient.name }}: feels worse",
                "priority": "urgent",
            },
            "goto": "escalated",
        },
        {"id": "no-answer", "end": {"outcome": "no_answer"}},
        {"id": "escalated", "end": {"outcome": "escalated"}},
        {"id": "done", "end": {"outcome": "completed"}},
    ],
}


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    return with_twilio(settings, "voice-journey", twilio_mock, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL)


async def called(api: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """Abdul enrolled in the check call, which is waiting for the answers; the call's message."""
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    assert (await api.post("/v1/journeys", json=CHECK_CALL)).status_code == 201
    created = await api.post("/v1/journeys/check-call/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    enrollment_id: str = created.json()["enrollment_id"]

    async def waiting() -> bool:
        body = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return bool(body["current_step"] == "await-call")

    await eventually(waiting)
    [call] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    return enrollment_id, call


@pytest.mark.parametrize(("feeling", "outcome", "tasks"), [("2", "escalated", 1), ("1", "completed", 0)])
async def test_the_journey_branches_on_the_keys_the_patient_pressed(
    api: httpx.AsyncClient, feeling: str, outcome: str, tasks: int
) -> None:
    enrollment_id, call = await called(api)
    assert (call["channel"], call["provider"], call["status"]) == ("voice", "twilio-voice", "queued")
    assert call["to"] == "+15559784581"

    await twilio_says(api, "twiml", call["id"], {"CallSid": CALL_SID, "AnsweredBy": "human"})
    await twilio_says(
        api, "gather", call["id"], {"CallSid": CALL_SID, "Digits": feeling}, question=0, attempt=1
    )
    await twilio_says(api, "gather", call["id"], {"CallSid": CALL_SID, "Digits": "1"}, question=1, attempt=1)

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return body if body["status"] == "completed" else None

    done = await eventually(finished)
    assert done["outcome"] == outcome
    queue = (await api.get("/v1/tasks", params={"queue": "nurses"})).json()["items"]
    assert len(queue) == tasks
    if tasks:
        assert queue[0]["title"] == "Call Abdul Koepp: feels worse"

    completed = {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "42", "AnsweredBy": "human"}
    await twilio_says(api, "status", call["id"], completed)
    [shown] = (await api.get("/v1/messages", params={"channel": "voice"})).json()["items"]
    assert shown["status"] == "delivered"
    assert shown["call"] == {
        "status": "completed",
        "outcome": "answered",
        "answered_by": "human",
        "duration_seconds": 42,
        "answers": {"feeling": feeling, "medicines": "1"},
        "transferred": False,
        "voicemail_left": False,
    }


async def test_a_patient_who_withdrew_consent_to_calls_is_not_called(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    withdrawn = await api.put(
        f"/v1/patients/{ABDUL_PATIENT_ID}/consents",
        json={"consents": [{"channel": "voice", "status": "revoked"}]},
    )
    assert withdrawn.status_code == 200
    assert (await api.post("/v1/journeys", json=CHECK_CALL)).status_code == 201
    created = await api.post("/v1/journeys/check-call/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    enrollment_id = created.json()["enrollment_id"]

    async def recorded() -> dict[str, Any] | None:
        items = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
        return items[0] if items else None

    call = await eventually(recorded)
    assert (call["channel"], call["status"], call["provider"]) == ("voice", "skipped", None)
    assert call["reason"] == "the patient withdrew consent (api)"
    assert call["call"] is None
