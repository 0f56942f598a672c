"""Fact rows follow the current version of their resource: an update replaces the row, a resolved
condition leaves the active list, a resource entered in error has no row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.clinical_summary import active_conditions
from aftercare.store.resources import store_resources
from models.tables import ClinicalCondition, ClinicalObservation

PATIENT = "p-facts"


def condition(status: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "c-1",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes"}]},
        "onsetDateTime": "2020-01-02T10:00:00Z",
        **more,
    }


def blood_pressure(systolic: float, status: str = "final") -> dict[str, Any]:
    def component(code: str, value: float) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "id": "bp-1",
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "effectiveDateTime": "2024-05-01T09:00:00Z",
        "component": [component("8480-6", systolic), component("8462-4", 80)],
    }


async def store(sessions: async_sessionmaker[AsyncSession], *resources: dict[str, Any]) -> None:
    async with sessions.begin() as session:
        await store_resources(session, list(resources), source="test", phone_region="US", fire_triggers=False)


async def test_an_update_replaces_the_row_and_a_resolved_condition_is_no_longer_active(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    await store(sessions, condition("active"))
    async with sessions() as session:
        assert [row.resource_id for row in await active_conditions(session, [PATIENT])] == ["c-1"]

    await store(sessions, condition("resolved", abatementDateTime="2024-01-01"))
    async with sessions() as session:
        assert await active_conditions(session, [PATIENT]) == []
        row = await session.get(ClinicalCondition, "c-1")
        assert row is not None
        assert (row.status, row.abatement_at is not None) == ("resolved", True)


async def test_a_resource_entered_in_error_loses_its_rows_components_included(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    await store(sessions, blood_pressure(120), condition("active"))
    async with sessions() as session:
        rows = (
            await session.scalars(select(ClinicalObservation).order_by(ClinicalObservation.resource_id))
        ).all()
        assert [row.resource_id for row in rows] == ["bp-1", "bp-1#component-8462-4", "bp-1#component-8480-6"]
        assert rows[2].value_number == 120

    await store(sessions, blood_pressure(135))
    async with sessions() as session:
        systolic = await session.get(ClinicalObservation, "bp-1#component-8480-6")
        assert systolic is not None
        assert systolic.value_number == 135

    await store(
        sessions,
        blood_pressure(135, status="entered-in-error"),
        condition("active", verificationStatus={"coding": [{"code": "entered-in-error"}]}),
    )
    async with sessions() as session:
        assert (await session.scalars(select(ClinicalObservation))).all() == []
        assert await session.get(ClinicalCondition, "c-1") is None
