"""FHIR changes as patient events: a new version of a patient's resource is delivered to the patient's
running enrollments as `fhir.<type>` (e.g. `fhir.appointment`), so journeys can wait for it or exit on
it (`exit: [{event: fhir.immunization, outcome: vaccinated}]`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.segments.on_events import SegmentEvent
from aftercare.store.journeys import get_journey
from aftercare.store.resources import StoredVersion
from models.tables import Enrollment
from models.temporal import PatientEvent
from models.workflow_names import DELIVER_EVENT


@dataclass(frozen=True)
class FhirDelivery:
    """One `fhir.<type>` event for one running enrollment's workflow."""

    workflow_id: str
    event: PatientEvent


def fhir_event_type(resource_type: str) -> str:
    """`Appointment` → `fhir.appointment`."""
    return f"fhir.{resource_type.lower()}"


def fhir_segment_events(versions: Iterable[StoredVersion]) -> list[SegmentEvent]:
    """The versions as events that may refresh segments (`fhir.<type>` for the patient)."""
    return [
        SegmentEvent(
            version.patient_id, fhir_event_type(version.ref.resource_type), version.ref.versioned_reference
        )
        for version in versions
        if version.patient_id is not None
    ]


def fhir_event(version: StoredVersion) -> PatientEvent:
    """The event for one resource version; its id makes a repeat delivery a no-op."""
    return PatientEvent(
        id=f"fhir:{version.ref.versioned_reference}",
        type=fhir_event_type(version.ref.resource_type),
        data={
            "resource_type": version.ref.resource_type,
            "id": version.ref.resource_id,
            "version": version.ref.version_id,
            "interaction": version.interaction,
            "resource": version.content,
        },
    )


async def deliver_fhir_events(
    sessions: async_sessionmaker[AsyncSession], client: Client, versions: list[StoredVersion]
) -> int:
    """Signal each running enrollment of the versions' patients that listens for their type; returns
    how many signals were sent. An enrollment does not receive the version that started it."""
    async with sessions() as session:
        deliveries = await plan_fhir_events(session, versions)
    return await send_fhir_events(client, deliveries)


_RUNNING = select(
    Enrollment.workflow_id,
    Enrollment.journey_key,
    Enrollment.journey_version,
    Enrollment.patient_id,
    Enrollment.trigger,
).where(Enrollment.patient_id.in_(bindparam("patient_ids", expanding=True)), Enrollment.status == "running")


async def plan_fhir_events(session: AsyncSession, versions: list[StoredVersion]) -> list[FhirDelivery]:
    """The signals `deliver_fhir_events` sends, read in the caller's transaction (the notification path
    reads them in the transaction that stores the versions, to save a connection and its round trips)."""
    by_patient: dict[str, list[StoredVersion]] = defaultdict(list)
    for version in versions:
        if version.patient_id is not None:
            by_patient[version.patient_id].append(version)
    if not by_patient:
        return []
    running = await (await session.connection()).execute(_RUNNING, {"patient_ids": list(by_patient)})
    deliveries = []
    for enrollment in running:
        started_by = (
            (enrollment.trigger.get("resource") or {}) if enrollment.trigger.get("kind") == "fhir" else {}
        )
        others = [v for v in by_patient[enrollment.patient_id] if started_by != v.ref.model_dump(mode="json")]
        if not others:  # the enrollment these versions just started: no need to read its journey
            continue
        journey = await get_journey(session, enrollment.journey_key, enrollment.journey_version)
        listened = journey.listened_event_types() if journey is not None else frozenset()
        for version in others:
            if listened is not None and fhir_event_type(version.ref.resource_type) not in listened:
                continue
            deliveries.append(FhirDelivery(enrollment.workflow_id, fhir_event(version)))
    return deliveries


async def send_fhir_events(client: Client, deliveries: list[FhirDelivery]) -> int:
    """Send the planned signals (outside any transaction); an enrollment that ended meanwhile is skipped."""
    sent = 0
    for delivery in deliveries:
        try:
            await client.get_workflow_handle(delivery.workflow_id).signal(DELIVER_EVENT, delivery.event)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        sent += 1
    return sent
