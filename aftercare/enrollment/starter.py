"""Starting an enrollment: allocate it under the journey's re-entry rule, then start its workflow.

Allocation is a row insert guarded by unique indexes (one running enrollment per journey and patient,
one enrollment ever for re-entry `never`, one per journey and trigger), so racing triggers cannot both
enter. It happens in the caller's transaction, next to whatever else the caller writes. The workflow
starts after that transaction commits; its id derives from the enrollment id, so starting twice is
harmless, and a row whose workflow never started (a crash between commit and start) or was
terminated from the Temporal UI is repaired the next time a trigger runs into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.availability import TEMPORAL, unavailable_part
from aftercare.metrics import ENROLLMENTS_STARTED
from aftercare.store.enrollments import (
    blocking_enrollment,
    close_enrollment,
    insert_enrollment,
    insert_enrollments,
)
from aftercare.store.facilities import Placements, enrollment_facilities
from aftercare.store.journeys import get_journey
from aftercare.store.patients import existing_patient_ids
from models.journey import JourneyDefinition
from models.search_attributes import (
    CURRENT_STEP,
    ENROLLMENT_STATUS,
    ENROLLMENT_WORKFLOW_PREFIX,
    JOURNEY_KEY,
    JOURNEY_VERSION,
    PATIENT_ID,
    enrollment_workflow_id,
)
from models.tables import Enrollment
from models.temporal import EnrollmentInput, EnrollmentTrigger, PatientEvent
from models.workflow_names import DELIVER_EVENT, ENROLLMENT_WORKFLOW

log = logging.getLogger(__name__)

UNKNOWN_PATIENT = "the patient is not in the patient store"
ALREADY_HANDLED = "this trigger was already handled"
OTHER_FACILITY = "the patient does not belong to the journey's facility"

_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


@dataclass(frozen=True)
class EnrollOutcome:
    """The enrollment the request landed on, whether it is new, and why not when there is none."""

    enrollment_id: str | None
    created: bool
    reason: str | None = None


@dataclass(frozen=True)
class Allocation:
    """An allocated enrollment to start, or the enrollment that was already there (to check on)."""

    outcome: EnrollOutcome
    start: EnrollmentInput | None = None
    existing: Enrollment | None = None


def _refused(reason: str) -> Allocation:
    return Allocation(EnrollOutcome(None, created=False, reason=reason))


class EnrollmentStarter:
    """Allocates enrollments and starts their workflows on one task queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: Client, task_queue: str) -> None:
        self._sessions = sessions
        self._client = client
        self._task_queue = task_queue
        self._restarts = 0
        self._unstarted: dict[str, EnrollmentInput] = {}

    async def enroll(
        self,
        journey: JourneyDefinition,
        patient_id: str,
        trigger: EnrollmentTrigger,
        *,
        context: dict[str, Any] | None = None,
        trigger_key: str | None = None,
    ) -> EnrollOutcome:
        """Allocate in a transaction of its own, then start."""
        for _ in range(3):
            async with self._sessions.begin() as session:
                allocation = await self.allocate(
                    session, journey, patient_id, trigger, context=context, trigger_key=trigger_key
                )
            if await self.launch(allocation):
                return allocation.outcome
        return EnrollOutcome(None, created=False, reason="the enrollment could not be allocated; try again")

    @property
    def client(self) -> Client:
        """The Temporal client workflows are started with."""
        return self._client

    @property
    def task_queue(self) -> str:
        """The task queue workflows are started on."""
        return self._task_queue

    async def enroll_many(
        self,
        journey: JourneyDefinition,
        patients: Sequence[tuple[str, dict[str, Any]]],
        *,
        concurrency: int = 32,
        trigger_of: Callable[[str], tuple[EnrollmentTrigger, str | None]] | None = None,
    ) -> list[EnrollOutcome]:
        """Enroll many patients (by hand, unless `trigger_of` gives each patient's trigger and trigger
        key): one transaction allocates them all, then the workflows start concurrently. Outcomes come
        back in the order given; unknown patients are refused."""
        how = trigger_of or _by_hand
        async with self._sessions.begin() as session:
            known = await existing_patient_ids(session, {patient_id for patient_id, _ in patients})
            placed = await enrollment_facilities(session, known, journey.facility)
            allocations = await self._allocate_many(session, journey, patients, known, how, placed)
        limit = asyncio.Semaphore(concurrency)

        async def launch(position: int, allocation: Allocation | None) -> EnrollOutcome:
            patient_id, context = patients[position]
            if allocation is None:
                return EnrollOutcome(None, created=False, reason=UNKNOWN_PATIENT)
            async with limit:
                if await self.launch(allocation):
                    return allocation.outcome
                trigger, trigger_key = how(patient_id)
                return await self.enroll(
                    journey, patient_id, trigger, context=context, trigger_key=trigger_key
                )

        return list(await asyncio.gather(*(launch(i, a) for i, a in enumerate(allocations))))

    async def _allocate_many(
        self,
        session: AsyncSession,
        journey: JourneyDefinition,
        patients: Sequence[tuple[str, dict[str, Any]]],
        known: set[str],
        how: Callable[[str], tuple[EnrollmentTrigger, str | None]],
        placed: dict[str, str],
    ) -> list[Allocation | None]:
        """One multi-row insert for the batch; the rows a unique rule refused are allocated one by one."""
        rows: list[tuple[int, dict[str, Any], EnrollmentInput]] = []
        allocations: list[Allocation | None] = [None] * len(patients)
        for position, (patient_id, context) in enumerate(patients):
            if patient_id in known and journey.facility and patient_id not in placed:
                allocations[position] = _refused(OTHER_FACILITY)
            elif patient_id in known:
                trigger, trigger_key = how(patient_id)
                values, start = self._row(journey, patient_id, trigger, context, trigger_key)
                rows.append((position, values | {"facility": placed.get(patient_id)}, start))
        inserted = await insert_enrollments(session, [values for _, values, _ in rows])
        for position, values, start in rows:
            if values["id"] in inserted:
                ENROLLMENTS_STARTED.labels(journey.key, start.trigger.kind).inc()
                allocations[position] = Allocation(EnrollOutcome(values["id"], created=True), start=start)
            else:
                patient_id, context = patients[position]
                allocations[position] = await self.allocate(
                    session,
                    journey,
                    patient_id,
                    start.trigger,
                    context=context,
                    trigger_key=values["trigger_key"],
                )
        return allocations

    def _row(
        self,
        journey: JourneyDefinition,
        patient_id: str,
        trigger: EnrollmentTrigger,
        context: dict[str, Any] | None,
        trigger_key: str | None,
    ) -> tuple[dict[str, Any], EnrollmentInput]:
        enrollment_id = str(uuid.uuid4())
        start = EnrollmentInput(
            enrollment_id=enrollment_id,
            patient_id=patient_id,
            journey=journey,
            trigger=trigger,
            context=context or {},
        )
        values = {
            "id": enrollment_id,
            "status": "running",
            "journey_key": journey.key,
            "journey_version": journey.version,
            "patient_id": patient_id,
            "current_step": journey.steps[0].id if journey.steps else None,
            "trigger": trigger.model_dump(mode="json"),
            "trigger_key": trigger_key,
            "context": context or {},
            "exclusive": journey.reentry != "always",
            "once_only": journey.reentry == "never",
            "workflow_id": enrollment_workflow_id(enrollment_id),
        }
        return values, start

    async def allocate(
        self,
        session: AsyncSession,
        journey: JourneyDefinition,
        patient_id: str,
        trigger: EnrollmentTrigger,
        *,
        context: dict[str, Any] | None = None,
        trigger_key: str | None = None,
        placements: Placements | None = None,
    ) -> Allocation:
        """Insert the enrollment row unless a re-entry rule or an earlier identical trigger forbids it,
        or the journey belongs to a facility the patient is not of (`placements`: the patient's, when
        already read)."""
        values, start = self._row(journey, patient_id, trigger, context, trigger_key)
        placed = await enrollment_facilities(session, [patient_id], journey.facility, placements=placements)
        if journey.facility and patient_id not in placed:
            return _refused(OTHER_FACILITY)
        values["facility"] = placed.get(patient_id)
        enrollment_id: str = values["id"]
        for _ in range(3):
            if await insert_enrollment(session, values):
                ENROLLMENTS_STARTED.labels(journey.key, trigger.kind).inc()
                return Allocation(EnrollOutcome(enrollment_id, created=True), start=start)
            blocking = await blocking_enrollment(
                session, journey.key, patient_id, trigger_key, once_only=journey.reentry == "never"
            )
            if blocking is None:
                continue
            if blocking.trigger_key is not None and blocking.trigger_key == trigger_key:
                reason = ALREADY_HANDLED
            elif blocking.status != "running":
                return _refused("the journey's re-entry rule is `never` and the patient was enrolled")
            else:
                reason = "the patient is already enrolled"
            return Allocation(EnrollOutcome(blocking.id, created=False, reason=reason), existing=blocking)
        return _refused("the enrollment could not be allocated")

    async def launch(self, allocation: Allocation) -> bool:
        """Start a new enrollment's workflow, or check on the existing one; False when the existing one
        turned out to have ended without its row knowing (the caller may allocate again)."""
        if allocation.start is not None:
            await self._start(allocation.start)
            return True
        existing = allocation.existing
        if existing is None or existing.status != "running":
            return True
        return await self._revive(existing)

    async def _start(self, request: EnrollmentInput) -> None:
        """Start the workflow; when Temporal cannot be reached, remember it for `start_unstarted` (the
        row is committed, so the enrollment was accepted) and let the caller see the error."""
        try:
            await self._start_workflow(request)
        except Exception as error:
            if unavailable_part(error) == TEMPORAL:
                self._unstarted[request.enrollment_id] = request
            raise
        self._unstarted.pop(request.enrollment_id, None)

    @property
    def unstarted(self) -> int:
        """Enrollments allocated while Temporal was unreachable, not started yet."""
        return len(self._unstarted)

    async def start_unstarted(self, interval: float = 1.0) -> None:
        """Until cancelled: start the enrollments that were allocated while Temporal was unreachable, as
        soon as it answers again (seconds, not the next reconciliation). Starting is idempotent: the
        workflow id is the enrollment's."""
        while True:
            await asyncio.sleep(interval)
            for enrollment_id, request in list(self._unstarted.items()):
                try:
                    await self._start(request)
                except Exception as error:
                    if unavailable_part(error) != TEMPORAL:
                        self._unstarted.pop(enrollment_id, None)
                        log.exception("an unstarted enrollment could not be started")
                    break
                log.info("started an enrollment after an outage", extra={"enrollment_id": enrollment_id})

    async def _start_workflow(self, request: EnrollmentInput) -> None:
        journey = request.journey
        event = request.trigger.event
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                ENROLLMENT_WORKFLOW,
                request,
                id=enrollment_workflow_id(request.enrollment_id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(PATIENT_ID, request.patient_id),
                        SearchAttributePair(JOURNEY_KEY, journey.key),
                        SearchAttributePair(JOURNEY_VERSION, journey.version),
                        SearchAttributePair(ENROLLMENT_STATUS, "running"),
                        *([SearchAttributePair(CURRENT_STEP, journey.steps[0].id)] if journey.steps else []),
                    ]
                ),
                static_summary=f"{journey.name} (v{journey.version})",
                static_details=(
                    f"Journey `{journey.key}` v{journey.version}, enrollment `{request.enrollment_id}`, "
                    f"started by {request.trigger.kind}"
                ),
                start_signal=DELIVER_EVENT if event else None,
                start_signal_args=[event] if event else [],
            )

    async def reconcile(self, enrollment: Enrollment) -> str:
        """Check a `running` row against Temporal: `alive`, `restarted` (the workflow never started) or
        `closed` (it ended without the row knowing)."""
        before = self._restarts
        alive = await self._revive(enrollment)
        if not alive:
            return "closed"
        return "restarted" if self._restarts > before else "alive"

    async def close_ended(self, workflow_id: str, status: WorkflowExecutionStatus | None) -> bool:
        """Mark a projection closed for a workflow that ended outside Aftercare; True when one changed."""
        closed = _CLOSED_STATUS.get(status) if status is not None else None
        if closed is None or not workflow_id.startswith(ENROLLMENT_WORKFLOW_PREFIX):
            return False
        async with self._sessions.begin() as session:
            return await close_enrollment(
                session,
                workflow_id.removeprefix(ENROLLMENT_WORKFLOW_PREFIX),
                closed,
                "closed outside Aftercare",
            )

    async def _revive(self, enrollment: Enrollment) -> bool:
        """Make sure a `running` row has a live workflow; False when the workflow turned out closed."""
        handle = self._client.get_workflow_handle(enrollment.workflow_id)
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            await self._restart_from_row(enrollment)
            return True
        status = _CLOSED_STATUS.get(description.status) if description.status is not None else None
        if status is None:
            return True
        async with self._sessions.begin() as session:
            await close_enrollment(session, enrollment.id, status, "closed outside Aftercare")
        log.warning(
            "reconciled an enrollment closed outside Aftercare", extra={"enrollment_id": enrollment.id}
        )
        return False

    async def _restart_from_row(self, enrollment: Enrollment) -> None:
        self._restarts += 1
        async with self._sessions() as session:
            journey = await get_journey(session, enrollment.journey_key, enrollment.journey_version)
        if journey is None:
            return
        await self._start(
            EnrollmentInput(
                enrollment_id=enrollment.id,
                patient_id=enrollment.patient_id,
                journey=journey,
                trigger=EnrollmentTrigger.model_validate(enrollment.trigger),
                context=enrollment.context,
            )
        )


def _by_hand(patient_id: str) -> tuple[EnrollmentTrigger, str | None]:
    return EnrollmentTrigger(kind="manual"), None


def event_trigger(event: PatientEvent) -> EnrollmentTrigger:
    """The trigger of an enrollment started by a patient event."""
    return EnrollmentTrigger(kind="event", event=event)
