"""The clinical summary of a person: one query per kind of fact, over all of the person's records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ARRAY, String, cast, func, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    ClinicalAllergy,
    ClinicalAppointment,
    ClinicalCondition,
    ClinicalEncounter,
    ClinicalMedication,
    ClinicalObservation,
    ClinicalProcedure,
)

# Clinical statuses of a condition that still affects the patient.
ACTIVE_CONDITION_STATUSES = ("active", "recurrence", "relapse")
# Appointment statuses that will not happen.
_NOT_HAPPENING = ("cancelled", "noshow", "entered-in-error")
_INACTIVE_ALLERGY = ("inactive", "resolved")


@dataclass(frozen=True)
class Summary:
    """The facts the profile shows, newest first unless said otherwise."""

    active_conditions: Sequence[ClinicalCondition]
    latest_observations: Sequence[ClinicalObservation]
    active_medications: Sequence[ClinicalMedication]
    recent_encounters: Sequence[ClinicalEncounter]
    allergies: Sequence[ClinicalAllergy]
    recent_procedures: Sequence[ClinicalProcedure]
    upcoming_appointments: Sequence[ClinicalAppointment]  # soonest first


async def active_conditions(session: AsyncSession, records: Sequence[str]) -> Sequence[ClinicalCondition]:
    """Conditions whose clinical status is active (or recurrence, relapse) and that have not abated."""
    rows = await session.scalars(
        select(ClinicalCondition)
        .where(
            ClinicalCondition.patient_id.in_(records),
            ClinicalCondition.status.in_(ACTIVE_CONDITION_STATUSES),
            ClinicalCondition.abatement_at.is_(None),
        )
        .order_by(ClinicalCondition.onset_at.desc().nulls_last(), ClinicalCondition.resource_id)
    )
    return rows.all()


async def latest_observations(
    session: AsyncSession, records: Sequence[str], limit: int = 20
) -> Sequence[ClinicalObservation]:
    """The latest valued observation of each code (its first code token), for the `limit` codes observed
    most recently."""
    code = ClinicalObservation.codes[1]
    latest = (
        select(ClinicalObservation)
        .distinct(code)
        .where(
            ClinicalObservation.patient_id.in_(records),
            func.cardinality(ClinicalObservation.codes) > 0,
            ClinicalObservation.status.is_distinct_from("cancelled"),
            or_(
                ClinicalObservation.value_number.is_not(None),
                ClinicalObservation.value_code.is_not(None),
                ClinicalObservation.value_text.is_not(None),
            ),
        )
        .order_by(code, ClinicalObservation.effective_at.desc().nulls_last(), ClinicalObservation.resource_id)
        .subquery()
    )
    newest = select(ClinicalObservation).join(latest, ClinicalObservation.resource_id == latest.c.resource_id)
    rows = await session.scalars(
        newest.order_by(latest.c.effective_at.desc().nulls_last(), latest.c.resource_id).limit(limit)
    )
    return rows.all()


async def latest_observation_of(
    session: AsyncSession, records: Sequence[str], token: str
) -> ClinicalObservation | None:
    """The latest observation carrying this code token (`http://loinc.org|4548-4`)."""
    row: ClinicalObservation | None = await session.scalar(
        select(ClinicalObservation)
        .where(
            ClinicalObservation.patient_id.in_(records),
            ClinicalObservation.codes.op("&&")(cast(array([token]), ARRAY(String))),
        )
        .order_by(ClinicalObservation.effective_at.desc().nulls_last())
        .limit(1)
    )
    return row


async def clinical_summary(
    session: AsyncSession, records: Sequence[str], *, recent: int = 10, observation_codes: int = 20
) -> Summary:
    """The summary over these patient records (a person's): `recent` items of each listed kind, the latest
    observation of the `observation_codes` codes observed most recently."""
    medications = await session.scalars(
        select(ClinicalMedication)
        .where(ClinicalMedication.patient_id.in_(records), ClinicalMedication.status == "active")
        .order_by(ClinicalMedication.authored_at.desc().nulls_last(), ClinicalMedication.resource_id)
    )
    encounters = await session.scalars(
        select(ClinicalEncounter)
        .where(ClinicalEncounter.patient_id.in_(records))
        .order_by(ClinicalEncounter.start_at.desc().nulls_last(), ClinicalEncounter.resource_id)
        .limit(recent)
    )
    allergies = await session.scalars(
        select(ClinicalAllergy)
        .where(
            ClinicalAllergy.patient_id.in_(records),
            or_(ClinicalAllergy.status.is_(None), ClinicalAllergy.status.not_in(_INACTIVE_ALLERGY)),
        )
        .order_by(ClinicalAllergy.recorded_at.desc().nulls_last(), ClinicalAllergy.resource_id)
    )
    procedures = await session.scalars(
        select(ClinicalProcedure)
        .where(ClinicalProcedure.patient_id.in_(records))
        .order_by(ClinicalProcedure.performed_at.desc().nulls_last(), ClinicalProcedure.resource_id)
        .limit(recent)
    )
    appointments = await session.scalars(
        select(ClinicalAppointment)
        .where(
            ClinicalAppointment.patient_id.in_(records),
            ClinicalAppointment.start_at >= func.now(),
            or_(ClinicalAppointment.status.is_(None), ClinicalAppointment.status.not_in(_NOT_HAPPENING)),
        )
        .order_by(ClinicalAppointment.start_at, ClinicalAppointment.resource_id)
        .limit(recent)
    )
    return Summary(
        active_conditions=await active_conditions(session, records),
        latest_observations=await latest_observations(session, records, limit=observation_codes),
        active_medications=medications.all(),
        recent_encounters=encounters.all(),
        allergies=allergies.all(),
        recent_procedures=procedures.all(),
        upcoming_appointments=appointments.all(),
    )
