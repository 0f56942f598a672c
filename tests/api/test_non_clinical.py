"""The non-clinical role sees a patient without clinical data: no clinical summary, no clinical
timeline events, no message texts; and it cannot reach the clinical routes at all."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Message
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient

CLINICAL_KINDS = {"encounter", "condition", "procedure", "appointment"}


async def test_a_non_clinical_user_reads_the_profile_without_its_clinical_parts(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        session.add(
            Message(
                id="m1",
                idempotency_key="m1",
                patient_id=ABDUL_PATIENT_ID,
                channel="sms",
                status="sent",
                body="Your HbA1c was 9.6%",
            )
        )
    made = await api.post("/v1/api-keys", json={"name": "front-desk", "roles": ["non_clinical"]})
    front_desk = {"X-API-Key": made.json()["key"]}

    full = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}")).json()
    redacted = (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}", headers=front_desk)).json()

    assert full["clinical"]["active_conditions"]
    assert {item["kind"] for item in full["timeline"]} & CLINICAL_KINDS
    assert full["redacted"] == []
    assert redacted["clinical"] is None
    assert not {item["kind"] for item in redacted["timeline"]} & CLINICAL_KINDS
    assert [message["body"] for message in full["recent_messages"]] == ["Your HbA1c was 9.6%"]
    assert [(message["id"], message["body"]) for message in redacted["recent_messages"]] == [("m1", None)]
    assert redacted["redacted"] == [
        "clinical",
        "timeline.clinical",
        "recent_messages.subject",
        "recent_messages.body",
    ]
    for field in ("name", "birth_date", "phone", "consents", "channels", "identity"):
        assert redacted[field] == full[field]
    assert (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/segments", headers=front_desk)).status_code == 403
    assert (await api.get("/v1/messages", headers=front_desk)).status_code == 403
    assert (await api.get(f"/v1/patients/{ABDUL_PATIENT_ID}/consents", headers=front_desk)).status_code == 200
