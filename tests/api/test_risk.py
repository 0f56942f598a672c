"""`GET /v1/patients/{id}/risk`: each discharge's scores with their band and every component explained."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.aftercare.store.test_risk_scores import PATIENT, condition, encounter, patient, store

STAY = {
    "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority", "code": "EM"}]}
}


async def test_the_risk_of_each_discharge_with_its_components_and_their_basis(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store(
        sessions,
        patient(),
        encounter("old-stay", "IMP", "2024-01-03T10:00:00Z", "2024-01-04T09:00:00Z"),
        encounter("stay", "IMP", "2025-03-10T14:00:00Z", "2025-03-24T10:00:00Z", **STAY),
        condition("chf", "88805009"),
        condition("mets", "128462008"),
    )
    response = await api.get(f"/v1/patients/{PATIENT}/risk")
    assert response.status_code == 200
    body = response.json()
    assert body["patient_id"] == PATIENT
    latest, older = body["scores"]
    assert (latest["score"], latest["encounter_id"], older["encounter_id"]) == ("lace", "stay", "old-stay")
    assert latest["value"] == 7 + 3 + 5 + 0
    assert latest["band"] == "high"
    assert latest["components"]["L"] == {
        "value": 14,
        "points": 7,
        "basis": ["Encounter/stay"],
        "detail": None,
    }
    assert latest["components"]["A"]["points"] == 3
    assert latest["components"]["A"]["detail"] == {"reasons": ["priority EM"]}
    assert latest["components"]["C"]["value"] == 7
    assert sorted(latest["components"]["C"]["basis"]) == ["Condition/chf", "Condition/mets"]
    assert latest["components"]["E"] == {"value": 0, "points": 0, "basis": [], "detail": None}
    assert latest["as_of"]
    assert latest["algorithm"].startswith("lace-")
    assert (older["value"], older["band"]) == (1 + 0 + 5 + 0, "moderate")


async def test_an_unknown_patient_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/patients/nobody/risk")
    assert response.status_code == 404
