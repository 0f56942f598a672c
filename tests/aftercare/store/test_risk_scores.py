"""Stored risk scores follow the patient's data: a discharge is scored when it arrives, scored again when
a late Condition or emergency visit changes it (its `as_of` moves), left alone when nothing changes, and
dropped when the encounter stops being a discharge. Synthea's inpatient stays are a sanity run."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.fhir.bundles import entries_of
from aftercare.store.resources import store_resources
from aftercare.store.risk_scores import scores_of
from models.risk_tables import RiskScore
from tests.conftest import SYNTHEA_BUNDLES

PATIENT = "p-risk"
SNOMED = "http://snomed.info/sct"


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Risk", "given": ["Ruth"]}]}


def encounter(identifier: str, klass: str, start: str, end: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": identifier,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "period": {"start": start, "end": end},
        **more,
    }


def condition(identifier: str, code: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": identifier,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        **more,
    }


async def store(sessions: async_sessionmaker[AsyncSession], *resources: dict[str, Any]) -> None:
    async with sessions.begin() as session:
        await store_resources(session, list(resources), source="test", phone_region="US", fire_triggers=False)


async def lace_row(
    sessions: async_sessionmaker[AsyncSession], encounter_id: str = "stay"
) -> RiskScore | None:
    async with sessions() as session:
        return await session.get(RiskScore, (encounter_id, "lace"))


async def test_a_discharge_is_scored_and_a_late_condition_scores_it_again(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    stay = encounter("stay", "IMP", "2025-03-10T14:00:00Z", "2025-03-15T10:00:00Z")
    await store(sessions, patient(), stay, condition("chf", "88805009"))
    first = await lace_row(sessions)
    assert first is not None
    assert first.value == 4 + 0 + 1 + 0
    assert first.components["C"]["basis"] == ["Condition/chf"]
    assert first.algorithm.startswith("lace-")

    await store(sessions, stay)  # the same version again: nothing changes
    again = await lace_row(sessions)
    assert again is not None
    assert again.as_of == first.as_of

    # A late-arriving diagnosis and an emergency visit found afterwards.
    await store(
        sessions,
        condition("ckd", "433144002"),
        encounter("ed", "EMER", "2025-01-02T08:00:00Z", "2025-01-02T12:00:00Z"),
    )
    late = await lace_row(sessions)
    assert late is not None
    assert late.value == 4 + 0 + 3 + 1
    assert late.components["E"]["basis"] == ["Encounter/ed"]
    assert late.as_of > first.as_of


async def test_an_encounter_that_is_no_longer_a_discharge_loses_its_score(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    await store(sessions, patient(), encounter("stay", "IMP", "2025-03-10T14:00:00Z", "2025-03-11T10:00:00Z"))
    assert await lace_row(sessions) is not None
    await store(
        sessions,
        encounter("stay", "IMP", "2025-03-10T14:00:00Z", "2025-03-11T10:00:00Z", status="entered-in-error"),
    )
    assert await lace_row(sessions) is None


async def test_every_synthea_inpatient_stay_gets_an_explained_lace_score(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    stays: set[str] = set()
    for path in sorted(SYNTHEA_BUNDLES.glob("*.json")):
        resources = [entry.resource for entry in entries_of(json.loads(path.read_text()))]
        found = {
            r["id"]
            for r in resources
            if r["resourceType"] == "Encounter" and r["class"]["code"] == "IMP" and r["status"] == "finished"
        }
        if found:
            stays |= found
            await store(sessions, *resources)
    assert stays
    async with sessions() as session:
        rows = (await session.scalars(select(RiskScore).where(RiskScore.score == "lace"))).all()
        patients = {row.patient_id for row in rows}
        assert {row.encounter_id for row in rows} == stays
        assert len(await scores_of(session, patients)) == len(rows)
    for row in rows:
        assert row.value == sum(part["points"] for part in row.components.values())
        assert set(row.components) == {"L", "A", "C", "E"}
        assert f"Encounter/{row.encounter_id}" in row.components["L"]["basis"]
        assert 0 <= row.value <= 19


def observation(identifier: str, loinc: str, value: float, unit: str, at: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": identifier,
        "status": "final",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "valueQuantity": {"value": value, "unit": unit},
        "effectiveDateTime": at,
    }


async def test_hospital_is_scored_once_its_labs_arrive(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    stay = encounter(
        "stay", "IMP", "2025-03-10T14:00:00Z", "2025-03-16T10:00:00Z", priority={"coding": [{"code": "UR"}]}
    )
    await store(sessions, patient(), stay, observation("hb", "718-7", 10.9, "g/dL", "2025-03-15T08:00:00Z"))
    async with sessions() as session:
        assert await session.get(RiskScore, ("stay", "hospital")) is None  # no sodium yet
    await store(
        sessions,
        observation("na", "2951-2", 133, "mmol/L", "2025-03-15T08:00:00Z"),
        {
            "resourceType": "Procedure",
            "id": "proc",
            "status": "completed",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "code": {"text": "Echocardiography"},
            "performedDateTime": "2025-03-12T09:00:00Z",
        },
    )
    async with sessions() as session:
        row = await session.get(RiskScore, ("stay", "hospital"))
    assert row is not None
    assert {name: part["points"] for name, part in row.components.items()} == {
        "H": 1,
        "O": 0,
        "S": 1,
        "P": 1,
        "I": 1,
        "T": 0,
        "A": 2,
    }
    assert row.value == 6
    assert row.components["S"]["basis"] == ["Observation/na"]
