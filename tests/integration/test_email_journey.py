"""Email end to end: the patient's address arrives as an updated Patient through the API, a journey's
`channel: best` send picks email because the patient ranked it first, SendGrid (the real SDK against
Prism serving SendGrid's Mail Send spec) accepts it, and SendGrid's signed events track it."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from aftercare.settings import Settings
from tests.api.webhooks.test_sendgrid import PUBLIC_KEY, signed
from tests.conftest import ABDUL_PATIENT_ID, patient_of, synthea_bundle
from tests.helpers import with_email
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

CHECK_IN = {
    "key": "week-one-check-in",
    "version": 1,
    "name": "Week one check-in",
    "steps": [{"id": "check-in", "send": {"template": "week-one-check-in", "channel": "best"}}],
}
TEMPLATES = [
    {"key": "week-one-check-in", "channel": "sms", "body": "Hi {{ patient.given }}, how is your first week?"},
    {
        "key": "week-one-check-in",
        "channel": "email",
        "subject": "Your first week at home",
        "body": "Dear {{ patient.given }},\n\nHow is your first week at home?",
        "html": "<p>Dear {{ patient.given }},</p><p>How is your first week at home?</p>",
    },
]


@pytest.fixture
def api_settings(settings: Settings, sendgrid_mock: str) -> Settings:
    return settings.model_copy(
        update={
            "temporal_task_queue": "email-journey",
            "sendgrid_api_key": SecretStr("SG.test-key"),
            "sendgrid_from_email": "care@hospital.example",
            "sendgrid_base_url": sendgrid_mock,
            "sendgrid_webhook_public_key": PUBLIC_KEY,
        }
    )


async def test_best_reaches_a_patient_who_prefers_email_by_email(api: httpx.AsyncClient) -> None:
    bundle = synthea_bundle()
    assert (await api.post("/v1/fhir/import", json=bundle, params={"triggers": "false"})).status_code == 200
    updated = with_email(patient_of(bundle), "abdul.koepp@example.org", preferred=True)
    update = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": updated}]}
    assert (await api.post("/v1/fhir/import", json=update, params={"triggers": "false"})).status_code == 200
    profile = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()
    assert (profile["email"], profile["preferred_channel"]) == ("abdul.koepp@example.org", "email")

    for template in TEMPLATES:
        assert (await api.post("/v1/templates", json=template)).status_code == 201
    assert (await api.post("/v1/journeys", json=CHECK_IN)).status_code == 201
    created = await api.post(
        "/v1/journeys/week-one-check-in/enrollments", json={"patient_id": ABDUL_PATIENT_ID}
    )
    enrollment_id = created.json()["enrollment_id"]

    async def sent() -> dict[str, Any] | None:
        items = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
        return items[0] if items and items[0]["status"] not in ("pending", "sending") else None

    email = await eventually(sent)
    assert (email["channel"], email["provider"], email["status"]) == ("email", "sendgrid", "queued")
    assert (email["to"], email["subject"]) == ("abdul.koepp@example.org", "Your first week at home")

    payload = json.dumps(
        [
            {
                "email": "abdul.koepp@example.org",
                "timestamp": int(time.time()),
                "event": "delivered",
                "sg_event_id": "evt-delivered-1",
                "sg_message_id": "x.filter0001",
                "aftercare_message_id": email["id"],
            }
        ]
    )
    response = await api.post("/webhooks/sendgrid/events", content=payload, headers=signed(payload))
    assert response.json()["applied"] == 1
    [tracked] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert tracked["status"] == "delivered"
