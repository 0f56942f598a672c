"""Care-team tasks created by journeys; completing one tells the enrollment that created it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.enrollment.task_events import tell_enrollment, write_task_back
from aftercare.store.enrollments import get_enrollment
from aftercare.store.tasks import complete_task, get_task, list_tasks
from api.deps import ServicesDep, SessionDep
from api.services import Services
from models.api import TaskCompletion, TaskList, TaskView
from models.tables import Task

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


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
    task_id: str, body: TaskCompletion, session: SessionDep, services: ServicesDep
) -> TaskView:
    """Complete an open task; its enrollment receives a `task.completed` event."""
    return task_view(await finish_task(session, services, task_id, body))


async def finish_task(session: AsyncSession, services: Services, task_id: str, body: TaskCompletion) -> Task:
    """Complete an open task (404 when there is none, 409 when it is not open), then tell its running
    enrollment and, when outreach is written back, the chart; the transaction ends before Temporal is
    called."""
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
    await tell_enrollment(services.temporal, task, enrollment)
    if services.settings.writes_back:
        await write_task_back(services.temporal, services.settings.temporal_task_queue, task)
    return task
