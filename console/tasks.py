"""Care tasks: the work queue of care coordinators, filtered by queue (team), priority and status, the
most urgent first; completing a task with an outcome tells the enrollment that created it, as the API
does. (Claiming and reassigning wait for the task store to keep an assignee.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from aftercare.store.tasks import list_tasks
from api.deps import get_services
from api.routes.tasks import finish_task
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from models.api import TaskCompletion
from models.tables import Task

router = APIRouter(prefix="/console/tasks", include_in_schema=False)

STATUSES = ("open", "completed", "cancelled")
PRIORITIES = ("", "urgent", "high", "normal", "low")
OUTCOMES = ("done", "reached", "no_answer", "left_message", "medication_reconciled", "declined", "escalated")


@dataclass(frozen=True)
class TaskFilters:
    """The queue's filters, as the form sent them (unknown values fall back to the defaults)."""

    queue: str = ""
    priority: str = ""
    status: str = "open"

    @classmethod
    def of(cls, queue: str, priority: str, status: str) -> TaskFilters:
        """Filters from query values."""
        return cls(
            queue=queue.strip()[:64],
            priority=priority if priority in PRIORITIES else "",
            status=status if status in STATUSES else "open",
        )


@dataclass(frozen=True)
class TaskRow:
    """A task as the queue lists it."""

    task: Task
    overdue: bool


async def task_queue(request: Request, filters: TaskFilters, limit: int = 200) -> list[TaskRow]:
    """The tasks the filters select, the most urgent first."""
    async with get_services(request).sessions() as session:
        rows = await list_tasks(session, queue=filters.queue or None, status=filters.status, limit=limit)
    now = datetime.now(UTC)
    return [
        TaskRow(task, task.status == "open" and task.due_at is not None and task.due_at < now)
        for task in rows
        if not filters.priority or task.priority == filters.priority
    ]


def _context(filters: TaskFilters, rows: list[TaskRow], **extra: Any) -> dict[str, Any]:
    return {
        "filters": filters,
        "rows": rows,
        "statuses": STATUSES,
        "priorities": PRIORITIES,
        "outcomes": OUTCOMES,
        "errors": {},
        "failed_task": None,
        **extra,
    }


@router.get("", response_class=HTMLResponse)
async def tasks(
    request: Request, user: ConsoleUser, queue: str = "", priority: str = "", status: str = "open"
) -> HTMLResponse:
    """The work queue."""
    filters = TaskFilters.of(queue, priority, status)
    return render(request, "tasks.html", _context(filters, await task_queue(request, filters)))


@router.post("/{task_id}/complete", response_class=HTMLResponse)
async def complete(request: Request, task_id: str, user: ConsoleUser) -> Response:
    """Complete a task with an outcome and a note; errors show by the task's form."""
    form = await read_form(request)
    outcome, note = form.get("outcome") or "", form.get("note") or ""
    services = get_services(request)
    try:
        completion = TaskCompletion(
            outcome=str(outcome), note=str(note).strip() or None, completed_by=user.subject[:200]
        )
        async with services.sessions() as session:
            await finish_task(session, services, task_id, completion)
    except (ValidationError, HTTPException) as error:
        message = (
            "; ".join(problem["msg"] for problem in error.errors())
            if isinstance(error, ValidationError)
            else str(error.detail)
        )
        filters = TaskFilters()
        context = _context(filters, await task_queue(request, filters), errors={"outcome": message})
        return render(request, "tasks.html", {**context, "failed_task": task_id}, status_code=422)
    return RedirectResponse("/console/tasks?completed=1", status_code=303)
