"""Dynamic segments drive segment-based journeys: a refresh records who entered and who left, enrolls
the newcomers in every journey whose entry is the segment, and tells the running enrollments of those
who left with the event `segment.exited` (a journey with the exit rule `{event: segment.exited,
outcome: segment_exit}` then ends with that outcome)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.segments.membership import Refresh, refresh_membership
from aftercare.store.journeys import latest_journeys
from aftercare.store.segments import get_segment, latest_segments
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition
from models.segment_runs import SegmentRefreshSummary
from models.tables import Enrollment
from models.temporal import EnrollmentTrigger, PatientEvent
from models.workflow_names import DELIVER_EVENT

log = logging.getLogger(__name__)

ENTERED_EVENT = "segment.entered"
EXITED_EVENT = "segment.exited"


@dataclass(frozen=True)
class SegmentDriver:
    """Refreshes segments and drives the journeys they enter patients in."""

    sessions: async_sessionmaker[AsyncSession]
    client: Client
    starter: EnrollmentStarter

    async def refresh(
        self, key: str | None = None, as_of: datetime | None = None
    ) -> list[SegmentRefreshSummary]:
        """Refresh one segment or every segment; unknown keys refresh nothing."""
        moment = as_of or datetime.now(UTC)
        async with self.sessions() as session:
            if key is None:
                definitions = await latest_segments(session)
            else:
                found = await get_segment(session, key)
                definitions = [found] if found is not None else []
            journeys = await latest_journeys(session)
        return [await self.refresh_one(definition, journeys, moment) for definition in definitions]

    async def refresh_one(
        self, definition: SegmentDefinition, journeys: list[JourneyDefinition], as_of: datetime
    ) -> SegmentRefreshSummary:
        """Refresh one segment, then enroll and signal."""
        async with self.sessions.begin() as session:
            refreshed = await refresh_membership(session, definition, as_of)
        entered_by = [j for j in journeys if j.entry is not None and j.entry.segment == definition.key]
        enrolled = await self._enroll(refreshed, entered_by, as_of)
        signalled = await self._signal_exits(refreshed, entered_by, as_of)
        return SegmentRefreshSummary(
            key=definition.key,
            entered=len(refreshed.entered),
            exited=len(refreshed.exited),
            enrolled=enrolled,
            exits_signalled=signalled,
        )

    async def _enroll(self, refreshed: Refresh, journeys: list[JourneyDefinition], as_of: datetime) -> int:
        started = 0
        for journey in journeys:
            for patient_id in refreshed.entered:
                event = PatientEvent(
                    id=f"{ENTERED_EVENT}:{refreshed.key}:{patient_id}:{as_of.isoformat()}",
                    type=ENTERED_EVENT,
                    data={"segment": refreshed.key},
                    occurred_at=as_of,
                )
                outcome = await self.starter.enroll(
                    journey,
                    patient_id,
                    EnrollmentTrigger(kind="event", event=event),
                    context={"segment": refreshed.key},
                    trigger_key=f"segment:{event.id}",
                )
                started += int(outcome.created)
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
        signalled = 0
        for workflow_id, patient_id in running:
            event = PatientEvent(
                id=f"{EXITED_EVENT}:{refreshed.key}:{patient_id}:{as_of.isoformat()}",
                type=EXITED_EVENT,
                data={"segment": refreshed.key},
                occurred_at=as_of,
            )
            try:
                await self.client.get_workflow_handle(workflow_id).signal(DELIVER_EVENT, event)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                log.info("enrollment workflow %s is gone; not told it left %s", workflow_id, refreshed.key)
                continue
            signalled += 1
        return signalled
