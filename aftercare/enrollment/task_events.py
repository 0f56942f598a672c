"""A care task completed or cancelled, wherever that happened (the API, or the EHR through a FHIR Task):
its enrollment receives `task.completed` (or `task.cancelled`), and the chart's Task follows when
outreach is written back."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.enrollment.write_back import start_write_back
from aftercare.fhir.outreach import aftercare_task_id
from aftercare.store.enrollments import get_enrollment
from aftercare.store.tasks import cancel_task, complete_task
from models.tables import Enrollment, Task
from models.temporal import PatientEvent, WriteBackInput
from models.workflow_names import DELIVER_EVENT

log = logging.getLogger(__name__)
TASK_COMPLETED = "task.completed"
TASK_CANCELLED = "task.cancelled"
# A FHIR Task's status that ends the Aftercare task, and the store's function for it.
_ENDINGS = {"completed": complete_task, "cancelled": cancel_task}


async def tell_enrollment(temporal: Client, task: Task, enrollment: Enrollment | None) -> None:
    """Deliver `task.completed` (or `task.cancelled`) to the running enrollment that created the task."""
    if enrollment is None or enrollment.status != "running":
        return
    cancelled = task.status == "cancelled"
    event = PatientEvent(
        id=f"task:{task.id}:cancelled" if cancelled else f"task:{task.id}",
        type=TASK_CANCELLED if cancelled else TASK_COMPLETED,
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
    await start_write_back(
        temporal, task_queue, WriteBackInput(task_id=task.id), f"task-{task.id}-{task.status}"
    )


async def complete_tasks_from_fhir(
    sessions: async_sessionmaker[AsyncSession], temporal: Client, resources: list[dict[str, Any]]
) -> int:
    """Complete (or cancel) the Aftercare tasks whose FHIR Task (`urn:aftercare:task` identifier)
    arrived `completed` (or `cancelled`), and tell their enrollments; a task no longer open is left as
    it is. Returns how many tasks ended."""
    ended = 0
    for resource in resources:
        task_id = aftercare_task_id(resource)
        end = _ENDINGS.get(str(resource.get("status")))
        if task_id is None or end is None:
            continue
        business = resource.get("businessStatus") or {}
        async with sessions.begin() as session:
            task = await end(
                session,
                task_id,
                outcome=str(business.get("text") or resource["status"])[:64],
                note=None,
                completed_by=f"fhir:Task/{resource.get('id')}"[:200],
            )
            enrollment = (
                await get_enrollment(session, task.enrollment_id) if task and task.enrollment_id else None
            )
        if task is not None:
            ended += 1
            log.info("task ended in the EHR", extra={"task_id": task.id, "status": task.status})
            await tell_enrollment(temporal, task, enrollment)
    return ended
