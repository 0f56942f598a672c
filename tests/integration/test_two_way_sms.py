"""Two-way SMS end to end: a journey texts the patient through Twilio (the real SDK against Prism serving
Twilio's spec), Twilio reports the delivery, the patient's reply arrives on the signed inbound webhook, and
the journey branches on it. STOP ends the conversation for that number."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aftercare.settings import Settings
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import with_twilio
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

ABDUL_PHONE = "+15559784581"
CALL_BACK = {
    "key": "call-back-offer",
    "version": 1,
    "name": "Offer a call back after discharge",
    "exit": [{"event": "sms.opt_out", "outcome": "opted_out"}],
    "steps": [
        {"id": "offer", "send": {"template": "call-back-offer"}},
        {
            "id": "await-reply",
            "wait_for": {"event": "sms.reply", "timeout": "P2D", "on_timeout": "no-answer"},
        },
        {
            "id": "route",
            "branch": [
                {"when": "%event.data.body.upper() = 'YES'", "goto": "call"},
                {"otherwise": "no-answer"},
            ],
        },
        {"id": "call", "task": {"queue": "nurses", "title": "Call {{ patient.name }} back"}, "goto": "done"},
        {"id": "no-answer", "end": {"outcome": "no_answer"}},
        {"id": "done", "end": {"outcome": "call_requested"}},
    ],
}
OFFER = {
    "key": "call-back-offer",
    "channel": "sms",
    "body": "Hi {{ patient.given }}, would you like a nurse to call you? Reply YES. Reply STOP to opt out.",
}


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    return with_twilio(settings, "two-way-sms", twilio_mock, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL)


async def start(api: httpx.AsyncClient) -> str:
    assert (
        await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    ).status_code == 200
    assert (await api.post("/v1/templates", json=OFFER)).status_code == 201
    assert (await api.post("/v1/journeys", json=CALL_BACK)).status_code == 201
    created = await api.post(
        "/v1/journeys/call-back-offer/enrollments", json={"patient_id": ABDUL_PATIENT_ID}
    )
    enrollment_id: str = created.json()["enrollment_id"]

    async def waiting() -> bool:
        body = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return bool(body["current_step"] == "await-reply")

    await eventually(waiting)
    return enrollment_id


async def enrollment(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def test_a_yes_reply_reaches_the_waiting_journey_and_books_a_call(api: httpx.AsyncClient) -> None:
    enrollment_id = await start(api)
    [sms] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert (sms["provider"], sms["status"], sms["to"]) == ("twilio", "queued", ABDUL_PHONE)

    delivered = await post_signed(
        api,
        f"/webhooks/twilio/status?message_id={sms['id']}",
        {"MessageSid": sms["provider_message_id"], "MessageStatus": "delivered"},
    )
    assert delivered.status_code == 204
    reply = await post_signed(
        api,
        "/webhooks/twilio/inbound",
        {"MessageSid": "SM" + "a" * 32, "From": ABDUL_PHONE, "To": "+15005550006", "Body": "yes"},
    )
    assert reply.status_code == 200

    async def finished() -> dict[str, Any] | None:
        body = await enrollment(api, enrollment_id)
        return body if body["status"] == "completed" else None

    done = await eventually(finished)
    assert done["outcome"] == "call_requested"
    [task] = (await api.get("/v1/tasks", params={"queue": "nurses"})).json()["items"]
    assert task["title"] == "Call Abdul Koepp back"
    [sms] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert sms["status"] == "delivered"


async def test_stop_ends_the_journey_and_no_further_text_is_sent_to_the_number(
    api: httpx.AsyncClient,
) -> None:
    enrollment_id = await start(api)
    stop = await post_signed(
        api,
        "/webhooks/twilio/inbound",
        {"MessageSid": "SM" + "b" * 32, "From": ABDUL_PHONE, "To": "+15005550006", "Body": "STOP"},
    )
    assert stop.status_code == 200

    async def exited() -> dict[str, Any] | None:
        body = await enrollment(api, enrollment_id)
        return body if body["status"] == "exited" else None

    assert (await eventually(exited))["outcome"] == "opted_out"

    again = await api.post("/v1/journeys/call-back-offer/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    second_id = again.json()["enrollment_id"]

    async def skipped() -> dict[str, Any] | None:
        items = (await api.get("/v1/messages", params={"enrollment_id": second_id})).json()["items"]
        return items[0] if items else None

    message = await eventually(skipped)
    assert message["status"] == "skipped"
    assert message["reason"] == "the patient withdrew consent (sms-keyword)"
