"""A send's first read: the message already recorded under its idempotency key, the patient's profile
and the facility the patient hears from, in one statement (each may be missing)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.voice import PRIMARY_ORDER, Voice, voice_of
from models.facility_tables import Facility, PatientFacility
from models.tables import Message, Patient

_ONE = select(literal(1).label("one")).subquery()
_PRIMARY_FACILITY = (
    select(PatientFacility.facility)
    .where(PatientFacility.patient_id == bindparam("patient_id"))
    .order_by(*PRIMARY_ORDER)
    .limit(1)
    .scalar_subquery()
)
_FIRST_READ = (
    select(Message, Patient, Facility)
    .select_from(_ONE)
    .outerjoin(Message, Message.idempotency_key == bindparam("key"))
    .outerjoin(Patient, Patient.id == bindparam("patient_id"))
    .outerjoin(Facility, Facility.key == _PRIMARY_FACILITY)
)


@dataclass(frozen=True)
class FirstRead:
    """What a send reads before anything else."""

    earlier: Message | None
    patient: Patient | None
    voice: Voice | None


async def first_read(session: AsyncSession, key: str, patient_id: str) -> FirstRead:
    """The earlier message under `key`, the patient and their voice (None: placed in no facility)."""
    row = (await session.execute(_FIRST_READ, {"key": key, "patient_id": patient_id})).one()
    earlier, patient, facility = row
    return FirstRead(earlier, patient, voice_of(facility) if facility is not None else None)
