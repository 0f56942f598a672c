"""The same person arriving from two sources becomes one person: by a shared identifier automatically,
by a configured rule automatically or as a candidate for review. Merges keep their evidence and reverse."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.clinical_summary import active_conditions
from aftercare.store.identity import (
    AlreadyOnePerson,
    MergeNotReversible,
    merge_records,
    open_candidates,
    person_of,
    records_of,
    reverse_merge,
)
from aftercare.store.resources import store_resources
from models.tables import IdentityMerge
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient

OTHER = "clinic-b-0001"
SSN = "http://hl7.org/fhir/sid/us-ssn"


def from_clinic_b(patient: dict[str, Any], *, identifiers: list[dict[str, Any]]) -> dict[str, Any]:
    """The same person as another source records them: another id and MRN, maybe a shared identifier."""
    other = copy.deepcopy(patient)
    other["id"] = OTHER
    other["identifier"] = [{"system": "urn:clinic-b:mrn", "value": "B-77"}, *identifiers]
    return other


def condition_of(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "clinic-b-condition",
        "subject": {"reference": f"Patient/{patient_id}"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]
        },
    }


async def store(
    sessions: async_sessionmaker[AsyncSession],
    resources: list[dict[str, Any]],
    rules: list[str] | None = None,
) -> None:
    async with sessions.begin() as session:
        await store_resources(
            session,
            resources,
            source="clinic-b",
            phone_region="US",
            fire_triggers=False,
            identity_rules=rules,
        )


async def test_a_shared_identifier_merges_the_records_and_their_facts(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    abdul = await load_synthea_patient(sessions)
    ssn = next(item for item in abdul["identifier"] if item["system"] == SSN)
    await store(sessions, [from_clinic_b(abdul, identifiers=[ssn]), condition_of(OTHER)])

    async with sessions() as session:
        assert await person_of(session, OTHER) == ABDUL_PATIENT_ID
        records = await records_of(session, ABDUL_PATIENT_ID)
        assert records == [ABDUL_PATIENT_ID, OTHER]
        assert "clinic-b-condition" in {row.resource_id for row in await active_conditions(session, records)}
        merge = (await session.scalars(select(IdentityMerge))).one()
        assert (merge.person_id, merge.record_id, merge.rule) == (ABDUL_PATIENT_ID, OTHER, "identifier")
        assert merge.evidence["identifiers"][0]["system"] == SSN
        assert ssn["value"] not in str(merge.evidence)  # evidence names fields, never PHI values


async def test_phone_and_birth_date_merge_when_the_rule_is_automatic_and_reversing_restores_both(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    abdul = await load_synthea_patient(sessions)
    await store(
        sessions, [from_clinic_b(abdul, identifiers=[])], rules=["identifier", "phone+birth_date:auto"]
    )
    async with sessions.begin() as session:
        assert await person_of(session, OTHER) == ABDUL_PATIENT_ID
        merge = (await session.scalars(select(IdentityMerge))).one()
        assert merge.rule == "phone+birth_date"
        assert merge.evidence["fields"] == ["phone", "birth_date"]
        await reverse_merge(session, merge.id, reason="twins", by="nurse")
    async with sessions() as session:
        assert await person_of(session, OTHER) == OTHER
        assert await person_of(session, ABDUL_PATIENT_ID) == ABDUL_PATIENT_ID
        reversed_merge = await session.get(IdentityMerge, merge.id)
        assert reversed_merge is not None
        assert reversed_merge.reversal_reason == "twins"
        with pytest.raises(MergeNotReversible):
            await reverse_merge(session, merge.id, reason="again", by=None)

    # The reversal is a decision: the same record arriving again is not merged again.
    changed = from_clinic_b(abdul, identifiers=[])
    changed["gender"] = "unknown"
    await store(sessions, [changed], rules=["identifier", "phone+birth_date:auto"])
    async with sessions() as session:
        assert await person_of(session, OTHER) == OTHER


async def test_review_rules_queue_a_candidate_that_a_manual_merge_resolves(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    abdul = await load_synthea_patient(sessions)
    await store(sessions, [from_clinic_b(abdul, identifiers=[])])  # default rules: phone+birth_date reviews

    async with sessions.begin() as session:
        (candidate,) = await open_candidates(session)
        assert (candidate.record_id, candidate.other_id, candidate.rule) == (
            OTHER,
            ABDUL_PATIENT_ID,
            "phone+birth_date",
        )
        assert await person_of(session, OTHER) == OTHER
        await merge_records(session, ABDUL_PATIENT_ID, OTHER, rule="manual", evidence={}, by="nurse")
        with pytest.raises(AlreadyOnePerson):
            await merge_records(session, OTHER, ABDUL_PATIENT_ID, rule="manual", evidence={}, by="nurse")
    async with sessions() as session:
        assert await open_candidates(session) == []
        assert await person_of(session, OTHER) == ABDUL_PATIENT_ID
