"""Dynamic segments drive segment-based journeys: a refresh records who entered and who left, enrolls
the newcomers in every journey whose entry is the segment, and tells the running enrollments of those
who left with the event `segment.exited` (a journey with the exit rule `{event: segment.exited,
outcome: segment_exit}` then ends with that outcome).

The schedule refreshes every segment whose `refresh_every` has passed; an event a segment lists in
`refresh_on` refreshes it for the one patient concerned, at once. Newcomers are enrolled in batches
(one transaction allocates a batch, then the workflows start concurrently) and the refresh reports
progress as it goes, so a refresh of tens of thousands stays visible and retryable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.starter import EnrollmentStarter, event_trigger
from aftercare.segments.membership import Refresh, member_count, refresh_membership
from aftercare.store.journeys import latest_journeys
from aftercare.store.segments import get_segment, last_refreshes, latest_segments, record_refresh
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition
from models.segment_runs import SegmentRefreshSummary
from models.tables import Enrollment
from models.temporal import EnrollmentTrigger, PatientEvent
from models.workflow_names import DELIVER_EVENT

log = logging.getLogger(__name__)

ENTERED_EVENT = "segment.entered"
EXITED_EVENT = "segment.exited"
# Newcomers enrolled per transaction, and signals to leavers in flight at once.
ENROLL_BATCH = 500
SIGNAL_CONCURRENCY = 32

# A pass that comes a little early still counts (the schedule fires on a fixed interval).
SCHEDULE_SLACK = timedelta(minutes=1)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class SegmentDriver:
    """Refreshes segments and drives the journeys they enter patients in."""

    sessions: async_sessionmaker[AsyncSession]
    client: Client
    starter: EnrollmentStarter

    async def refresh(
        self,
        key: str | None = None,
        as_of: datetime | None = None,
        *,
        patient_id: str | None = None,
        progress: Progress = _quiet,
    ) -> list[SegmentRefreshSummary]:
        """Refresh one segment (for one patient, when given) or every segment that is due; unknown
        keys refresh nothing."""
        moment = as_of or datetime.now(UTC)
        async with self.sessions() as session:
            if key is None:
                definitions = _due(await latest_segments(session), await last_refreshes(session), moment)
            else:
                found = await get_segment(session, key)
                definitions = [found] if found is not None else []
            journeys = await latest_journeys(session)
        return [
            await self.refresh_one(definition, journeys, moment, patient_id=patient_id, progress=progress)
            for definition in definitions
        ]

    async def refresh_one(
        self,
        definition: SegmentDefinition,
        journeys: list[JourneyDefinition],
        as_of: datetime,
        *,
        patient_id: str | None = None,
        progress: Progress = _quiet,
    ) -> SegmentRefreshSummary:
        """Refresh one segment, then enroll and signal."""
        async with self.sessions.begin() as session:
            refreshed = await refresh_membership(session, definition, as_of, patient_id)
            if patient_id is None:
                await record_refresh(
                    session,
                    definition,
                    as_of,
                    members=await member_count(session, definition.key),
                    entered=len(refreshed.entered),
                    exited=len(refreshed.exited),
                )
        progress(f"{definition.key}: {len(refreshed.entered)} entered, {len(refreshed.exited)} left")
        entered_by = [j for j in journeys if j.entry is not None and j.entry.segment == definition.key]
        enrolled = await self._enroll(refreshed, entered_by, as_of, progress)
        signalled = await self._signal_exits(refreshed, entered_by, as_of)
        return SegmentRefreshSummary(
            key=definition.key,
            entered=len(refreshed.entered),
            exited=len(refreshed.exited),
            enrolled=enrolled,
            exits_signalled=signalled,
        )

    async def _enroll(
        self, refreshed: Refresh, journeys: list[JourneyDefinition], as_of: datetime, progress: Progress
    ) -> int:
        def entered(patient_id: str) -> tuple[EnrollmentTrigger, str]:
            event = _event(ENTERED_EVENT, refreshed.key, patient_id, as_of)
            return event_trigger(event), f"segment:{event.id}"

        started = 0
        for journey in journeys:
            for first in range(0, len(refreshed.entered), ENROLL_BATCH):
                batch = refreshed.entered[first : first + ENROLL_BATCH]
                outcomes = await self.starter.enroll_many(
                    journey,
                    [(patient_id, {"segment": refreshed.key}) for patient_id in batch],
                    trigger_of=entered,
                )
                started += sum(outcome.created for outcome in outcomes)
                progress(f"{refreshed.key}: {started} enrolled in {journey.key}")
        return started

    async def _signal_exits(
        self, refreshed: Refresh, journeys: list[JourneyDefinition], as_of: datetime
    ) -> int:
        listening = [
            j.key
            for j in journeys
            if (listened := j.listened_event_types()) is None or EXITED_EVENT in listened
        ]
        if not refreshed.exited or not listening:
            return 0
        async with self.sessions() as session:
            running = (
                await session.execute(
                    select(Enrollment.workflow_id, Enrollment.patient_id).where(
                        Enrollment.status == "running",
                        Enrollment.journey_key.in_(listening),
                        Enrollment.patient_id.in_(refreshed.exited),
                    )
                )
            ).all()
        limit = asyncio.Semaphore(SIGNAL_CONCURRENCY)

        async def tell(workflow_id: str, patient_id: str) -> bool:
            event = _event(EXITED_EVENT, refreshed.key, patient_id, as_of)
            async with limit:
                try:
                    await self.client.get_workflow_handle(workflow_id).signal(DELIVER_EVENT, event)
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                    log.info(
                        "enrollment workflow %s is gone; not told it left %s", workflow_id, refreshed.key
                    )
                    return False
            return True

        told = await asyncio.gather(*(tell(workflow_id, patient_id) for workflow_id, patient_id in running))
        return sum(told)


def _event(kind: str, key: str, patient_id: str, as_of: datetime) -> PatientEvent:
    return PatientEvent(
        id=f"{kind}:{key}:{patient_id}:{as_of.isoformat()}",
        type=kind,
        data={"segment": key},
        occurred_at=as_of,
    )


def _due(
    definitions: Sequence[SegmentDefinition], last: dict[str, datetime], now: datetime
) -> list[SegmentDefinition]:
    """The segments a scheduled pass refreshes: those without `refresh_every`, and those whose last
    refresh is at least that long ago."""
    return [
        definition
        for definition in definitions
        if definition.refresh_every is None
        or definition.key not in last
        or now - last[definition.key] >= definition.refresh_every - SCHEDULE_SLACK
    ]
