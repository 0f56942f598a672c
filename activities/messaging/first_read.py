"""A send's first read: the message already recorded under its idempotency key, the patient's profile,
the facility the patient hears from and the newest versions of the step's template, in one statement
(each may be missing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.voice import PRIMARY_ORDER, Voice, voice_of
from aftercare.store.templates import NEWEST_VERSIONS
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
    select(Message, Patient, Facility, NEWEST_VERSIONS)
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
    # `[channel, locale, version, content_hash]` of the newest version of each variant of the template.
    template_versions: list[Any] | None = None


async def first_read(
    session: AsyncSession, key: str, patient_id: str, template: str | None = None
) -> FirstRead:
    """The earlier message under `key`, the patient, their voice (None: placed in no facility) and the
    newest versions of `template` (None: no template, or none published)."""
    parameters = {"key": key, "patient_id": patient_id, "template": template}
    earlier, patient, facility, versions = (await session.execute(_FIRST_READ, parameters)).one()
    return FirstRead(earlier, patient, voice_of(facility) if facility is not None else None, versions)
