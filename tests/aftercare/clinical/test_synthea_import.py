"""The whole Synthea sample (48 patient bundles, the hospital and practitioner bundles, and the 10-patient
bulk NDJSON export) goes through `store_resources`; the store and the clinical tables then agree with the
source files, counted and read here independently of the product code."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.fhir.bundles import entries_of
from aftercare.store.clinical_summary import active_conditions, latest_observation_of
from aftercare.store.resources import store_resources
from models.tables import (
    ClinicalAllergy,
    ClinicalCondition,
    ClinicalEncounter,
    ClinicalImmunization,
    ClinicalMedication,
    ClinicalObservation,
    ClinicalProcedure,
    FhirResource,
    IdentityMerge,
    PatientIdentifier,
)
from tests.conftest import SYNTHEA_BULK, SYNTHEA_BUNDLES

REYNA = "Reyna_Ziemann_08f8bfce-34cf-4b5a-a398-8e49650c6e3c.json"
HBA1C = "http://loinc.org|4548-4"


def bundle_resources() -> Iterator[list[dict[str, Any]]]:
    """The resources of each bundle file."""
    for path in sorted(SYNTHEA_BUNDLES.glob("*.json")):
        yield [entry.resource for entry in entries_of(json.loads(path.read_text()))]


def ndjson_resources(batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """The resources of the bulk export, in batches."""
    for path in sorted(SYNTHEA_BULK.glob("*.ndjson")):
        if path.name.startswith("log"):
            continue
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for start in range(0, len(lines), batch):
            yield lines[start : start + batch]


def source_batches() -> list[list[dict[str, Any]]]:
    return [*bundle_resources(), *ndjson_resources()]


def codes(concept: dict[str, Any]) -> set[str]:
    return {f"{coding.get('system', '')}|{coding['code']}" for coding in concept.get("coding", [])}


async def test_the_whole_synthea_sample_is_stored_and_normalised(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    batches = source_batches()
    expected = Counter(
        resource_type for resource_type, _ in {(r["resourceType"], r["id"]) for b in batches for r in b}
    )
    total = sum(len(batch) for batch in batches)

    started = time.perf_counter()
    async with sessions.begin() as session:
        for batch in batches:
            await store_resources(session, batch, source="test", phone_region="US", fire_triggers=False)
    elapsed = time.perf_counter() - started
    print(f"\nstored {total} resources in {elapsed:.1f}s: {total / elapsed:.0f} resources/s")

    async with sessions() as session:
        stored = dict(
            (
                await session.execute(
                    select(FhirResource.resource_type, func.count()).group_by(FhirResource.resource_type)
                )
            ).all()
        )
        assert stored == dict(expected)
        facts = {
            "Condition": ClinicalCondition,
            "Encounter": ClinicalEncounter,
            "MedicationRequest": ClinicalMedication,
            "Procedure": ClinicalProcedure,
            "AllergyIntolerance": ClinicalAllergy,
            "Immunization": ClinicalImmunization,
        }
        for resource_type, table in facts.items():
            assert await session.scalar(select(func.count()).select_from(table)) == expected[resource_type]
        panels = await session.scalar(
            select(func.count())
            .select_from(ClinicalObservation)
            .where(~ClinicalObservation.resource_id.contains("#"))
        )
        assert panels == expected["Observation"]
        # Every Patient's identifiers are recorded; no two Synthea people share one, so nothing merged.
        identifiers = sum(
            len(r.get("identifier", [])) for b in batches for r in b if r["resourceType"] == "Patient"
        )
        assert await session.scalar(select(func.count()).select_from(PatientIdentifier)) == identifiers
        assert await session.scalar(select(func.count()).select_from(IdentityMerge)) == 0


async def test_a_patients_active_conditions_and_latest_hba1c_match_the_source(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    resources = [entry.resource for entry in entries_of(json.loads((SYNTHEA_BUNDLES / REYNA).read_text()))]
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    active = {
        r["id"]
        for r in resources
        if r["resourceType"] == "Condition"
        and r["clinicalStatus"]["coding"][0]["code"] == "active"
        and "abatementDateTime" not in r
    }
    hba1c = max(
        (r for r in resources if r["resourceType"] == "Observation" and HBA1C in codes(r["code"])),
        key=lambda r: r["effectiveDateTime"],
    )
    async with sessions.begin() as session:
        await store_resources(session, resources, source="test", phone_region="US", fire_triggers=False)

    async with sessions() as session:
        assert {row.resource_id for row in await active_conditions(session, [patient_id])} == active
        latest = await latest_observation_of(session, [patient_id], HBA1C)
        assert latest is not None
        assert latest.resource_id == hba1c["id"]
        assert latest.value_number == hba1c["valueQuantity"]["value"]
        assert latest.value_unit == hba1c["valueQuantity"]["unit"]


async def test_the_clinical_tables_answer_plain_sql(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    """Segments query the fact tables with SQL: by code token (GIN overlap) and by time."""
    resources = [entry.resource for entry in entries_of(json.loads((SYNTHEA_BUNDLES / REYNA).read_text()))]
    async with sessions.begin() as session:
        await store_resources(session, resources, source="test", phone_region="US", fire_triggers=False)
    async with sessions() as session:
        with_hba1c = await session.scalar(
            text(
                "select count(distinct patient_id) from clinical_observations where codes && array[:code]::varchar[]"
            ),
            {"code": HBA1C},
        )
        assert with_hba1c == 1
