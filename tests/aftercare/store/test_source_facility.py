"""A patient read from a FHIR source that names a facility belongs to it, besides the facility of
their managing organization; a patient from elsewhere, matched by nothing, belongs to the group."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.resources import store_resources
from models.facility_tables import PatientFacility


def _patient(patient_id: str, organization: str | None = None) -> dict[str, object]:
    patient: dict[str, object] = {"resourceType": "Patient", "id": patient_id, "birthDate": "1970-01-01"}
    if organization:
        patient["managingOrganization"] = {"reference": organization}
    return patient


async def _placed(sessions: async_sessionmaker[AsyncSession]) -> set[tuple[str, str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(PatientFacility.patient_id, PatientFacility.facility, PatientFacility.source)
        )
        return {(row[0], row[1], row[2]) for row in rows}


async def test_patients_from_a_source_belong_to_its_facility(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO facilities (key, name, timezone, parent, organization) VALUES "
                "('group', 'Group', 'UTC', NULL, NULL), ('north', 'North', 'UTC', 'group', 'Organization/n'),"
                "('south', 'South', 'UTC', 'group', NULL)"
            )
        )
        await session.execute(
            text(
                "INSERT INTO fhir_sources (key, base_url, auth, watched_types, facility) VALUES "
                "('south-ehr', 'https://ehr.example', '{}', '{Patient}', 'south'),"
                "('shared-ehr', 'https://shared.example', '{}', '{Patient}', NULL)"
            )
        )
    for source, patients in (
        ("poll:south-ehr", [_patient("p-polled"), _patient("p-managed", "Organization/n")]),
        ("notification:south-ehr", [_patient("p-notified")]),
        ("poll:shared-ehr", [_patient("p-shared")]),
        ("import", [_patient("p-imported")]),
    ):
        async with sessions.begin() as session:
            await store_resources(session, patients, source=source, phone_region="US")
    assert await _placed(sessions) == {
        ("p-polled", "south", "fhir_source"),
        ("p-managed", "north", "managing_organization"),
        ("p-managed", "south", "fhir_source"),
        ("p-notified", "south", "fhir_source"),
        ("p-shared", "group", "default"),
        ("p-imported", "group", "default"),
    }
