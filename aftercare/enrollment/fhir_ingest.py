"""FHIR resources arriving (import or notification): stored, then journeys entered and events delivered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.fhir_events import (
    FhirDelivery,
    fhir_segment_events,
    plan_fhir_events,
    send_fhir_events,
)
from aftercare.enrollment.fhir_triggers import PlannedEnrollment, launch_planned, plan_fhir_enrollments
from aftercare.enrollment.risk_write_back import write_risk_back
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.enrollment.task_events import complete_tasks_from_fhir
from aftercare.segments.on_events import SegmentRefresh, plan_refreshes, start_refreshes
from aftercare.store.fhir_definitions import entered_and_refreshed
from aftercare.store.resources import StoredVersion, StoreResult, store_resources


@dataclass(frozen=True)
class Ingested:
    """What arriving resources did: versions stored, enrollments started, events delivered."""

    stored: StoreResult
    triggered: int
    events_delivered: int


async def ingest_fhir_resources(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    temporal: Client,
    resources: list[dict[str, Any]],
    *,
    source: str,
    phone_region: str,
    fire_triggers: bool = True,
    identity_rules: Sequence[str] | None = None,
    write_back_queue: str | None = None,
) -> Ingested:
    """One transaction stores the versions, allocates the enrollments they start and reads which running
    enrollments and segments the changes concern; then the workflows start, those enrollments receive
    the changes as `fhir.<type>` events and the segments' refreshes start. With a
    `write_back_queue` (outreach written back), the readmission risk scores of the patients whose data
    changed are written to the chart as RiskAssessments (each version of a score once)."""
    async with sessions.begin() as session:
        stored = await store_resources(
            session,
            resources,
            source=source,
            phone_region=phone_region,
            fire_triggers=fire_triggers,
            identity_rules=identity_rules,
        )
        versions = stored.pending_triggers
        events = fhir_segment_events(versions)
        journeys, segments = (
            await entered_and_refreshed(
                session, {v.ref.resource_type for v in versions}, {event.type for event in events}
            )
            if versions
            else ([], [])
        )
        planned = await plan_fhir_enrollments(session, starter, versions, journeys)
        # Read in the same transaction, sent after it: one connection and one transaction per notification.
        deliveries = await plan_fhir_events(session, versions)
        refreshes = await plan_refreshes(session, events, segments)
    triggered, delivered = await _hand_off(
        sessions, starter, temporal, planned, deliveries, refreshes, resources, write_back_queue
    )
    return Ingested(stored=stored, triggered=triggered, events_delivered=delivered)


@dataclass(frozen=True)
class HandOff:
    """What a transaction that stored versions leaves to do once it commits: the enrollments it
    allocated to start, the deliveries to running enrollments, the segment refreshes, and the
    resources (tasks they complete, risk scores to write back)."""

    planned: list[PlannedEnrollment]
    deliveries: list[FhirDelivery]
    refreshes: list[SegmentRefresh]
    resources: list[dict[str, Any]]


async def plan_hand_off(
    session: AsyncSession,
    versions: list[StoredVersion],
    planned: list[PlannedEnrollment],
    resources: list[dict[str, Any]],
) -> HandOff:
    """In the transaction that stored `versions` and allocated `planned` (the ADT intake's batches):
    the running enrollments the versions go to and the segments they refresh, read there as a FHIR
    notification reads them, so the hand-off needs no transaction of its own."""
    deliveries = await plan_fhir_events(session, versions)
    refreshes = await plan_refreshes(session, fhir_segment_events(versions))
    return HandOff(planned, deliveries, refreshes, resources)


async def hand_off(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    temporal: Client,
    planned: HandOff,
    write_back_queue: str | None = None,
) -> tuple[int, int]:
    """After the commit: start the workflows, deliver the versions to running enrollments as
    `fhir.<type>` events, refresh segments, end the tasks the resources complete and write risk scores
    back. Returns (enrollments started, events delivered)."""
    return await _hand_off(
        sessions,
        starter,
        temporal,
        planned.planned,
        planned.deliveries,
        planned.refreshes,
        planned.resources,
        write_back_queue,
    )


async def _hand_off(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    temporal: Client,
    planned: list[PlannedEnrollment],
    deliveries: list[FhirDelivery],
    refreshes: list[SegmentRefresh],
    resources: list[dict[str, Any]],
    write_back_queue: str | None,
) -> tuple[int, int]:
    triggered = await launch_planned(starter, planned)
    delivered = await send_fhir_events(temporal, deliveries)
    await start_refreshes(starter, refreshes)
    await complete_tasks_from_fhir(sessions, temporal, resources)
    if write_back_queue is not None:
        await write_risk_back(sessions, temporal, write_back_queue, resources)
    return triggered, delivered
