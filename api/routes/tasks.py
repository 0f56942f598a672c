"""Care-team tasks created by journeys; completing one tells the enrollment that created it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from aftercare.store.enrollments import get_enrollment
from aftercare.store.tasks import complete_task, get_task, list_tasks
from api.deps import SessionDep, TemporalDep
from models.api import TaskCompletion, TaskList, TaskView
from models.tables import Task
from models.temporal import PatientEvent
from models.workflow_names import DELIVER_EVENT

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

TASK_COMPLETED = "task.completed"


def task_view(task: Task) -> TaskView:
    """A task row as the API shows it."""
    return TaskView.model_validate(task, from_attributes=True)


@router.get("", response_model=TaskList)
async def read_tasks(
    session: SessionDep,
    queue: str | None = None,
    task_status: Annotated[Literal["open", "completed", "cancelled"] | None, Query(alias="status")] = "open",
    patient_id: str | None = None,
    enrollment_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TaskList:
    """A queue's tasks (open by default), the most urgent first."""
    rows = await list_tasks(
        session,
        queue=queue,
        status=task_status,
        patient_id=patient_id,
        enrollment_id=enrollment_id,
        limit=limit,
    )
    return TaskList(items=[task_view(row) for row in rows])


@router.get("/{task_id}", response_model=TaskView)
async def read_task(task_id: str, session: SessionDep) -> TaskView:
    """One task."""
    task = await get_task(session, task_id)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}")
    return task_view(task)


@router.post("/{task_id}/complete", response_model=TaskView)
async def complete(
    task_id: str, body: TaskCompletion, session: SessionDep, temporal: TemporalDep
) -> TaskView:
    """Complete an open task; its enrollment receives a `task.completed` event."""
    return task_view(await finish_task(session, temporal, task_id, body))


async def finish_task(session: AsyncSession, temporal: Client, task_id: str, body: TaskCompletion) -> Task:
    """Complete an open task (404 when there is none, 409 when it is not open), then tell its running
    enrollment; the transaction ends before Temporal is called."""
    async with session.begin():
        task = await complete_task(
            session, task_id, outcome=body.outcome, note=body.note, completed_by=body.completed_by
        )
        if task is None:
            existing = await get_task(session, task_id)
            if existing is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}")
            raise HTTPException(status.HTTP_409_CONFLICT, f"the task is already {existing.status}")
        enrollment = await get_enrollment(session, task.enrollment_id) if task.enrollment_id else None
    if enrollment is not None and enrollment.status == "running":
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
    return task
