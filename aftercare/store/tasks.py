"""Care-team tasks created by journeys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Task, table_of

_TASKS = table_of(Task)
_INSERT_TASK = (
    insert(_TASKS).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_TASKS.c.id)
)


async def create_task(session: AsyncSession, values: dict[str, Any]) -> str:
    """Create a task once per idempotency key; returns its id (the earlier one on a repeat)."""
    created = await session.scalar(_INSERT_TASK, values)
    if created is not None:
        return str(created)
    existing = await session.scalar(select(Task.id).where(Task.idempotency_key == values["idempotency_key"]))
    assert existing is not None
    return existing


async def get_task(session: AsyncSession, task_id: str) -> Task | None:
    """One task."""
    return await session.get(Task, task_id)


UNASSIGNED = ""
"""The `assignee` filter value that selects tasks nobody has claimed."""


async def list_tasks(
    session: AsyncSession,
    *,
    queue: str | None = None,
    status: str | None = None,
    patient_id: str | None = None,
    enrollment_id: str | None = None,
    priority: str | None = None,
    assignee: str | None = None,
    due_before: datetime | None = None,
    limit: int = 100,
) -> Sequence[Task]:
    """Tasks, the most urgent first: earliest due, then oldest. `assignee` `UNASSIGNED` selects the
    unclaimed ones; `due_before` those with a due time before it."""
    query = select(Task)
    if queue is not None:
        query = query.where(Task.queue == queue)
    if status is not None:
        query = query.where(Task.status == status)
    if patient_id is not None:
        query = query.where(Task.patient_id == patient_id)
    if enrollment_id is not None:
        query = query.where(Task.enrollment_id == enrollment_id)
    if priority is not None:
        query = query.where(Task.priority == priority)
    if assignee is not None:
        query = query.where(Task.assignee.is_(None) if assignee == UNASSIGNED else Task.assignee == assignee)
    if due_before is not None:
        query = query.where(Task.due_at < due_before)
    query = query.order_by(Task.due_at.asc().nulls_last(), Task.created_at, Task.id).limit(limit)
    return (await session.scalars(query)).all()


async def complete_task(
    session: AsyncSession, task_id: str, *, outcome: str, note: str | None, completed_by: str | None
) -> Task | None:
    """Mark an open task completed; None when it is not open (already completed or cancelled)."""
    return await _end_task(session, task_id, "completed", outcome, note, completed_by)


async def cancel_task(
    session: AsyncSession, task_id: str, *, outcome: str, note: str | None, completed_by: str | None
) -> Task | None:
    """Mark an open task cancelled (by whom in `completed_by`); None when it is not open."""
    return await _end_task(session, task_id, "cancelled", outcome, note, completed_by)


async def _end_task(
    session: AsyncSession, task_id: str, status: str, outcome: str, note: str | None, by: str | None
) -> Task | None:
    ended: Task | None = await session.scalar(
        update(Task)
        .where(Task.id == task_id, Task.status == "open")
        .values(status=status, outcome=outcome, note=note, completed_by=by, completed_at=func.now())
        .returning(Task)
    )
    return ended


async def assign_task(
    session: AsyncSession, task_id: str, assignee: str | None, *, claim: bool = False
) -> Task | None:
    """Give an open task to `assignee` (None: to nobody). A claim (`claim=True`) takes only a task that
    nobody else holds. None when the task is not open, or, for a claim, held by someone else."""
    query = update(Task).where(Task.id == task_id, Task.status == "open")
    if claim:
        query = query.where(or_(Task.assignee.is_(None), Task.assignee == assignee))
    assigned_at = func.now() if assignee is not None else None
    assigned: Task | None = await session.scalar(
        query.values(assignee=assignee, assigned_at=assigned_at).returning(Task)
    )
    return assigned


async def task_assignees(session: AsyncSession, limit: int = 100) -> Sequence[str]:
    """Who holds open tasks, by name."""
    query = (
        select(Task.assignee)
        .where(Task.status == "open", Task.assignee.is_not(None))
        .distinct()
        .order_by(Task.assignee)
        .limit(limit)
    )
    return [name for name in (await session.scalars(query)).all() if name is not None]
