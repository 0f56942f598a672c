"""The patient store: versions stored once, current versions, patient profiles and links."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.fhir.bundles import entries_of
from aftercare.store.patients import get_patient
from aftercare.store.resources import load_current, store_resources, version_id_of
from models.tables import FhirResource, FhirResourceVersion
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle

pytestmark = pytest.mark.usefixtures("empty_database")


def abdul_resources() -> list[dict]:  # type: ignore[type-arg]
    return [entry.resource for entry in entries_of(synthea_bundle())]


async def store(sessions: async_sessionmaker[AsyncSession], resources: list[dict], **options: object):  # type: ignore[no-untyped-def,type-arg]
    async with sessions.begin() as session:
        return await store_resources(session, resources, source="test", phone_region="US", **options)  # type: ignore[arg-type]


async def test_a_synthea_bundle_is_stored_with_a_profile_and_patient_links(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resources = abdul_resources()
    result = await store(sessions, resources)

    assert sum(result.imported.values()) == len(resources)
    assert result.imported["Patient"] == 1
    async with sessions() as session:
        patient = await get_patient(session, ABDUL_PATIENT_ID)
        linked = await session.scalar(
            select(func.count()).select_from(FhirResource).where(FhirResource.patient_id == ABDUL_PATIENT_ID)
        )
    assert patient is not None
    assert (patient.given, patient.phone) == ("Abdul", "+15559784581")
    clinical = [
        r for r in resources if r["resourceType"] in ("Observation", "Encounter", "Condition", "Claim")
    ]
    assert linked is not None
    assert linked >= len(clinical)


async def test_the_same_version_twice_is_stored_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    resources = abdul_resources()
    await store(sessions, resources)
    again = await store(sessions, resources)

    assert sum(again.imported.values()) == 0
    assert sum(again.unchanged.values()) == len(resources)
    async with sessions() as session:
        versions = await session.scalar(select(func.count()).select_from(FhirResourceVersion))
    assert versions == len(resources)


async def test_a_version_posted_again_is_offered_again_with_its_first_interaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resources = abdul_resources()
    await store(sessions, resources)
    again = await store(sessions, resources)
    assert len(again.pending_triggers) == len(resources)
    assert {version.interaction for version in again.pending_triggers} == {"create"}


async def test_changed_content_is_a_new_version_and_an_update(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resources = abdul_resources()
    first = await store(sessions, resources, fire_triggers=True)
    observation = next(r for r in resources if r["resourceType"] == "Observation")
    assert (
        next(v for v in first.pending_triggers if v.ref.resource_id == observation["id"]).interaction
        == "create"
    )

    changed = copy.deepcopy(observation)
    changed["valueQuantity"]["value"] = 123.4
    second = await store(sessions, [changed])

    [pending] = second.pending_triggers
    assert pending.interaction == "update"
    assert pending.ref.version_id == version_id_of(changed) != version_id_of(observation)
    async with sessions() as session:
        current = await load_current(session, "Observation", observation["id"])
    assert current is not None
    assert current["valueQuantity"]["value"] == 123.4


async def test_an_older_version_arriving_late_does_not_replace_the_current_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    newer = {
        "resourceType": "Patient",
        "id": "late",
        "meta": {"versionId": "2", "lastUpdated": "2024-05-02T00:00:00Z"},
        "name": [{"given": ["Newer"]}],
    }
    older = {
        "resourceType": "Patient",
        "id": "late",
        "meta": {"versionId": "1", "lastUpdated": "2024-05-01T00:00:00Z"},
        "name": [{"given": ["Older"]}],
    }
    await store(sessions, [newer])
    await store(sessions, [older])
    async with sessions() as session:
        patient = await get_patient(session, "late")
        versions = await session.scalar(
            select(func.count())
            .select_from(FhirResourceVersion)
            .where(FhirResourceVersion.resource_id == "late")
        )
    assert patient is not None
    assert patient.given == "Newer"
    assert versions == 2


async def test_loading_without_triggers_marks_versions_so_they_never_fire_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resources = abdul_resources()
    quiet = await store(sessions, resources, fire_triggers=False)
    again = await store(sessions, resources, fire_triggers=True)
    assert quiet.pending_triggers == []
    assert again.pending_triggers == []
