"""`GET/PUT /v1/patients/{id}/consents` and `GET /v1/patients/{id}/decisions`."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from models.journey import SendSpec
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient, send_request


async def test_consent_changes_are_kept_as_history_and_the_latest_holds(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_synthea_patient(sessions)
    url = f"/v1/patients/{ABDUL_PATIENT_ID}/consents"
    for status in ("revoked", "granted"):
        answer = await api.put(
            url, json={"consents": [{"channel": "sms", "purpose": "surveys", "status": status}]}
        )
        assert answer.status_code == 200
    body = (await api.get(url)).json()
    assert [(c["channel"], c["purpose"], c["status"]) for c in body["current"]] == [
        ("sms", "surveys", "granted")
    ]
    assert [c["status"] for c in body["history"]] == ["granted", "revoked"]
    assert body["history"][0]["source"] == "api"


async def test_a_bad_consent_is_refused_with_its_location(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_synthea_patient(sessions)
    answer = await api.put(
        f"/v1/patients/{ABDUL_PATIENT_ID}/consents",
        json={"consents": [{"channel": "fax", "status": "granted"}]},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "consents", 0, "channel"]
    assert (await api.get("/v1/patients/nobody/consents")).status_code == 404


async def test_decisions_list_every_send_decision_with_its_rule(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_synthea_patient(sessions)
    await api.put(
        f"/v1/patients/{ABDUL_PATIENT_ID}/consents",
        json={"consents": [{"channel": "*", "purpose": "surveys", "status": "revoked"}]},
    )
    activities = MessagingActivities(sessions, ProviderRegistry({}, OutboxProvider()))
    for step, purpose in (("one", "surveys"), ("two", "care_coordination")):
        request = send_request(SendSpec(channel="sms", body="Hi", purpose=purpose), step=step)  # type: ignore[arg-type]
        await ActivityEnvironment().run(activities.send_message, request)
    items = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions")).json()["items"]
    assert [(i["step_id"], i["decision"], i["rule"]) for i in items] == [
        ("two", "sent", "allowed"),
        ("one", "suppressed", "consent"),
    ]
    only = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/decisions?decision=suppressed")).json()["items"]
    assert [i["step_id"] for i in only] == ["one"]
