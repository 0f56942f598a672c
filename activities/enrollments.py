"""Activities that start enrollments: a journey's `enroll` step."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir_sync.intake import start_notification_workflow
from aftercare.store.enrollments import never_progressed
from aftercare.store.fhir_notifications import unfinished_notifications
from aftercare.store.journeys import get_journey
from models.temporal import (
    EnrollmentTrigger,
    ReconcileInput,
    ReconcileResult,
    StartEnrollmentInput,
    StartEnrollmentResult,
)
from models.workflow_names import ENROLLMENT_WORKFLOW

log = logging.getLogger(__name__)


class EnrollmentActivities:
    """Starts enrollments in other journeys, through the same starter the API uses."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], starter: EnrollmentStarter) -> None:
        self._sessions = sessions
        self._starter = starter

    @activity.defn(name="start_enrollment")
    async def start_enrollment(self, request: StartEnrollmentInput) -> StartEnrollmentResult:
        """Enroll the patient once per step visit; the other journey's re-entry rule applies."""
        call, spec = request.call, request.enroll
        async with self._sessions() as session:
            journey = await get_journey(session, spec.journey, spec.version)
        if journey is None:
            version = f" version {spec.version}" if spec.version else ""
            raise ApplicationError(
                f"no journey {spec.journey!r}{version}", type="InvalidInput", non_retryable=True
            )
        outcome = await self._starter.enroll(
            journey,
            call.scope.patient_id,
            EnrollmentTrigger(kind="enrollment", parent_enrollment_id=call.scope.enrollment_id),
            context={**call.scope.context, **spec.context},
            trigger_key=f"enroll:{call.idempotency_key}",
        )
        return StartEnrollmentResult(
            enrollment_id=outcome.enrollment_id, created=outcome.created, reason=outcome.reason
        )


class ReconcileActivities:
    """Keeps enrollment projections in step with their workflows."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        starter: EnrollmentStarter,
        client: Client,
        task_queue: str,
    ) -> None:
        self._sessions = sessions
        self._starter = starter
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name="reconcile_enrollments")
    async def reconcile_enrollments(self, request: ReconcileInput) -> ReconcileResult:
        """Close projections of workflows that ended outside Aftercare (terminated, timed out), and start
        the workflows of enrollments that were allocated but never started."""
        closed = 0
        query = (
            f"WorkflowType = '{ENROLLMENT_WORKFLOW}' AND ExecutionStatus != 'Running' "
            "AND (EnrollmentStatus = 'running' OR EnrollmentStatus = 'paused')"
        )
        async for execution in self._client.list_workflows(query, limit=request.limit):
            if await self._starter.close_ended(execution.id, execution.status):
                closed += 1
            activity.heartbeat()
        restarted = 0
        older_than = datetime.now(UTC) - timedelta(seconds=request.stale_after_seconds)
        async with self._sessions() as session:
            stale = await never_progressed(session, older_than, request.limit)
        for enrollment in stale:
            outcome = await self._starter.reconcile(enrollment)
            restarted += outcome == "restarted"
            closed += outcome == "closed"
            activity.heartbeat()
        if closed or restarted:
            log.warning("enrollments reconciled", extra={"closed": closed, "restarted": restarted})
        notifications = await self._redrive_notifications(older_than, request.limit)
        return ReconcileResult(closed=closed, restarted=restarted, notifications_redriven=notifications)

    async def _redrive_notifications(self, older_than: datetime, limit: int) -> int:
        """Start the workflows of received notifications whose start was lost (Temporal was down when
        they arrived); a workflow already running or finished under the same id is left alone."""
        async with self._sessions() as session:
            waiting = await unfinished_notifications(session, older_than, limit)
        started = 0
        for notification in waiting:
            started += await start_notification_workflow(self._client, self._task_queue, notification.id)
            activity.heartbeat()
        if started:
            log.warning("notifications re-driven", extra={"count": started})
        return started
