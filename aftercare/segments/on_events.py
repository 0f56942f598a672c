"""Segments refreshed by events: a patient event (a trigger, or a FHIR change as `fhir.<type>`) that a
segment lists in `refresh_on` starts a `RefreshSegments` workflow for that segment and that patient,
so membership (and the journeys it drives) follows clinical data between scheduled refreshes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.common import WorkflowIDConflictPolicy

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.store.segments import segments_refreshed_by
from models.segment import SegmentDefinition
from models.segment_runs import RefreshSegmentsInput
from models.workflow_names import REFRESH_SEGMENTS_WORKFLOW


@dataclass(frozen=True)
class SegmentEvent:
    """An event about a patient, by type and id."""

    patient_id: str
    type: str
    id: str


@dataclass(frozen=True)
class SegmentRefresh:
    """One segment to refresh for one event's patient."""

    key: str
    event: SegmentEvent


def refresh_workflow_id(key: str, event: SegmentEvent) -> str:
    """One refresh per segment and event (a redelivered event starts nothing new)."""
    digest = hashlib.sha256(f"{event.patient_id}\0{event.id}".encode()).hexdigest()[:20]
    return f"segment-refresh-{key}-{digest}"


async def refresh_on_events(
    sessions: async_sessionmaker[AsyncSession], starter: EnrollmentStarter, events: Iterable[SegmentEvent]
) -> int:
    """Start the refreshes the events call for; returns how many were started."""
    wanted = list(events)
    if not wanted:
        return 0
    async with sessions() as session:
        planned = await plan_refreshes(session, wanted)
    return await start_refreshes(starter, planned)


async def plan_refreshes(
    session: AsyncSession, events: Iterable[SegmentEvent], segments: list[SegmentDefinition] | None = None
) -> list[SegmentRefresh]:
    """The refreshes the events call for, read in the caller's transaction; `segments`: the latest
    segments their types refresh, when the caller read them already."""
    wanted = list(events)
    if not wanted:
        return []
    if segments is None:
        segments = await segments_refreshed_by(session, {event.type for event in wanted})
    return refreshes_of(segments, wanted)


def refreshes_of(
    segments: Iterable[SegmentDefinition], events: Iterable[SegmentEvent]
) -> list[SegmentRefresh]:
    """The refreshes of these segments (read already) that the events call for."""
    listed = list(segments)
    return [
        SegmentRefresh(segment.key, event)
        for event in events
        for segment in listed
        if event.type in segment.refresh_on
    ]


async def start_refreshes(starter: EnrollmentStarter, planned: Iterable[SegmentRefresh]) -> int:
    """Start the planned refreshes (outside any transaction); returns how many were started."""
    started = 0
    for refresh in planned:
        event = refresh.event
        await starter.client.start_workflow(
            REFRESH_SEGMENTS_WORKFLOW,
            RefreshSegmentsInput(key=refresh.key, patient_id=event.patient_id),
            id=refresh_workflow_id(refresh.key, event),
            task_queue=starter.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Refresh segment {refresh.key} for one patient after {event.type}",
        )
        started += 1
    return started
