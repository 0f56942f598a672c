"""A completed care task, wherever it was completed (the API, or the EHR through a FHIR Task): its
enrollment receives `task.completed`, and the chart's Task follows when outreach is written back."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from aftercare.fhir.outreach import aftercare_task_id
from aftercare.store.enrollments import get_enrollment
from aftercare.store.tasks import complete_task
from models.tables import Enrollment, Task
from models.temporal import PatientEvent, WriteBackInput
from models.workflow_names import DELIVER_EVENT, FHIR_WRITE_BACK_PREFIX, FHIR_WRITE_BACK_WORKFLOW

log = logging.getLogger(__name__)
TASK_COMPLETED = "task.completed"


async def tell_enrollment(temporal: Client, task: Task, enrollment: Enrollment | None) -> None:
    """Deliver `task.completed` to the running enrollment that created the task."""
    if enrollment is None or enrollment.status != "running":
        return
    event = PatientEvent(
        id=f"task:{task.id}",
        type=TASK_COMPLETED,
        data={
            "task_id": task.id,
            "queue": task.queue,
            "step": task.step_id,
            "outcome": task.outcome,
            "completed_by": task.completed_by,
        },
        occurred_at=task.completed_at,
    )
    try:
        await temporal.get_workflow_handle(enrollment.workflow_id).signal(DELIVER_EVENT, event)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


async def write_task_back(temporal: Client, task_queue: str, task: Task) -> None:
    """Start the `FhirWriteBack` workflow for the task as it is now (once per task and status)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await temporal.start_workflow(
            FHIR_WRITE_BACK_WORKFLOW,
            WriteBackInput(task_id=task.id),
            id=f"{FHIR_WRITE_BACK_PREFIX}task-{task.id}-{task.status}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )


async def complete_tasks_from_fhir(
    sessions: async_sessionmaker[AsyncSession], temporal: Client, resources: list[dict[str, Any]]
) -> int:
    """Complete the Aftercare tasks whose FHIR Task (`urn:aftercare:task` identifier) arrived
    `completed`, and tell their enrollments; a task completed already is left as it is."""
    completed = 0
    for resource in resources:
        task_id = aftercare_task_id(resource)
        if task_id is None or resource.get("status") != "completed":
            continue
        business = resource.get("businessStatus") or {}
        async with sessions.begin() as session:
            task = await complete_task(
                session,
                task_id,
                outcome=str(business.get("text") or "completed")[:64],
                note=None,
                completed_by=f"fhir:Task/{resource.get('id')}"[:200],
            )
            enrollment = (
                await get_enrollment(session, task.enrollment_id) if task and task.enrollment_id else None
            )
        if task is not None:
            completed += 1
            log.info("task completed in the EHR", extra={"task_id": task.id})
            await tell_enrollment(temporal, task, enrollment)
    return completed
