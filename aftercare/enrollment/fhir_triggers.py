"""FHIR triggers: resource versions enroll patients in journeys whose FHIR entry they match.

Planning runs inside the transaction that stores the resources: matching journeys are found, entry
criteria evaluated, enrollments allocated, and unusable triggers parked, all or nothing. Launching
the workflows follows the commit. Each (journey, version) pair enrolls at most once, whatever the
number of times the version is posted, because its trigger key is unique per journey.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.enrollment.discharges import discharge_key
from aftercare.enrollment.starter import Allocation, EnrollmentStarter
from aftercare.fhir.fhirpath import FhirPathError, is_true
from aftercare.store.facilities import placements_of
from aftercare.store.journeys import journeys_entered_by_fhir
from aftercare.store.resources import StoredVersion, load_current
from aftercare.store.triggers import park
from models.journey import JourneyDefinition
from models.temporal import EnrollmentTrigger

_CONCURRENT_STARTS = 8


@dataclass(frozen=True)
class PlannedEnrollment:
    """A journey a resource version enrolls its patient in, and the allocation made for it."""

    journey: JourneyDefinition
    version: StoredVersion
    allocation: Allocation

    @property
    def trigger(self) -> EnrollmentTrigger:
        """The enrollment's trigger: this resource version."""
        return EnrollmentTrigger(kind="fhir", resource=self.version.ref)

    @property
    def trigger_key(self) -> str:
        """Unique per journey: the version of the resource."""
        return trigger_key_of(self.version)


def trigger_key_of(version: StoredVersion) -> str:
    """`fhir:Observation/abc/_history/v1`; a discharge by its visit and end (`discharge_key`)."""
    return discharge_key(version.content) or f"fhir:{version.ref.versioned_reference}"


async def plan_fhir_enrollments(
    session: AsyncSession,
    starter: EnrollmentStarter,
    versions: list[StoredVersion],
    journeys: list[JourneyDefinition] | None = None,
) -> list[PlannedEnrollment]:
    """Allocate the enrollments these versions start, in the caller's transaction; `journeys`: the
    latest journeys their resource types enter, when the caller read them already."""
    if not versions:
        return []
    if journeys is None:
        journeys = await journeys_entered_by_fhir(session, sorted({v.ref.resource_type for v in versions}))
    if not journeys:
        return []
    placements = await placements_of(session, {v.patient_id for v in versions if v.patient_id})
    planned = []
    patients: dict[str, dict[str, Any] | None] = {}
    for version in versions:
        for journey in journeys:
            if not await _enters(session, journey, version, placements.known, patients):
                continue
            assert version.patient_id is not None
            allocation = await starter.allocate(
                session,
                journey,
                version.patient_id,
                EnrollmentTrigger(kind="fhir", resource=version.ref),
                trigger_key=trigger_key_of(version),
                placements=placements,
            )
            planned.append(PlannedEnrollment(journey, version, allocation))
    return planned


async def launch_planned(starter: EnrollmentStarter, planned: list[PlannedEnrollment]) -> int:
    """Start the planned workflows (after the commit); returns how many enrollments are new."""
    limit = asyncio.Semaphore(_CONCURRENT_STARTS)

    async def launch(item: PlannedEnrollment) -> bool:
        async with limit:
            if await starter.launch(item.allocation):
                return item.allocation.outcome.created
            assert item.version.patient_id is not None
            outcome = await starter.enroll(
                item.journey, item.version.patient_id, item.trigger, trigger_key=item.trigger_key
            )
            return outcome.created

    return sum(await asyncio.gather(*(launch(item) for item in planned)))


async def _enters(
    session: AsyncSession,
    journey: JourneyDefinition,
    version: StoredVersion,
    known: frozenset[str],
    patients: dict[str, dict[str, Any] | None],
) -> bool:
    entry = journey.entry.fhir if journey.entry else None
    if (
        entry is None
        or entry.resource != version.ref.resource_type
        or version.interaction not in entry.interactions
    ):
        return False
    reference = version.ref.versioned_reference
    if version.patient_id is None:
        await park(
            session, "fhir-trigger", f"matches journey {journey.key!r} but names no patient", reference
        )
        return False
    if version.patient_id not in known:
        await park(
            session, "fhir-trigger", f"patient {version.patient_id} is not in the patient store", reference
        )
        return False
    if not entry.criteria:
        return True
    patient = None
    if "%patient" in entry.criteria:
        if version.patient_id not in patients:
            patients[version.patient_id] = await load_current(session, "Patient", version.patient_id)
        patient = patients[version.patient_id]
    try:
        return fhir_entry_holds(entry.criteria, version.content, patient)
    except FhirPathError as error:
        await park(
            session, "fhir-trigger", f"journey {journey.key!r} entry criteria failed: {error}", reference
        )
        return False


def fhir_entry_holds(criteria: str, resource: dict[str, Any], patient: dict[str, Any] | None) -> bool:
    """Whether a FHIR entry's criteria hold for this resource version (`%patient`: the patient's FHIR
    resource); `FhirPathError` when they cannot be evaluated."""
    variables = {"patient": patient, "trigger": resource, "event": None, "context": {}}
    return is_true(criteria, resource, variables)
