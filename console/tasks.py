"""Care tasks: the work queue of care coordinators, filtered by queue (team), priority, status, due date
and assignee, the most urgent first. A coordinator claims a task (only one nobody else holds), gives it
to someone else or to nobody, and completes it with an outcome, which tells the enrollment that created
it, as the API does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from aftercare.security.principal import Principal
from aftercare.store.tasks import UNASSIGNED, assign_task, get_task, list_tasks, task_assignees
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
MINE, NOBODY = "me", "nobody"  # the assignee filter's two words beside a name
ASSIGNEE_MAX = 200


@dataclass(frozen=True)
class TaskFilters:
    """The queue's filters, as the form sent them (unknown values fall back to the defaults).
    `assignee` is "" (anyone), `me`, `nobody` or a user's name; `due_by` a day (tasks due by its end)."""

    queue: str = ""
    priority: str = ""
    status: str = "open"
    assignee: str = ""
    due_by: date | None = None

    @classmethod
    def of(cls, queue: str, priority: str, status: str, assignee: str = "", due_by: str = "") -> TaskFilters:
        """Filters from query values."""
        try:
            day = date.fromisoformat(due_by) if due_by else None
        except ValueError:
            day = None
        return cls(
            queue=queue.strip()[:64],
            priority=priority if priority in PRIORITIES else "",
            status=status if status in STATUSES else "open",
            assignee=assignee.strip()[:ASSIGNEE_MAX],
            due_by=day,
        )

    def assignee_for(self, user: Principal) -> str | None:
        """The store's assignee filter for this user: None (anyone), `UNASSIGNED` or a name."""
        if not self.assignee:
            return None
        if self.assignee == NOBODY:
            return UNASSIGNED
        return user.subject if self.assignee == MINE else self.assignee

    def due_before(self) -> datetime | None:
        """The end of the `due_by` day (UTC)."""
        if self.due_by is None:
            return None
        return datetime.combine(self.due_by + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class TaskRow:
    """A task as the queue lists it."""

    task: Task
    overdue: bool
    mine: bool


async def task_queue(
    request: Request, user: Principal, filters: TaskFilters, limit: int = 200
) -> tuple[list[TaskRow], list[str]]:
    """The tasks the filters select, the most urgent first; and who holds open tasks (for the filter)."""
    async with get_services(request).sessions() as session:
        rows = await list_tasks(
            session,
            queue=filters.queue or None,
            status=filters.status,
            priority=filters.priority or None,
            assignee=filters.assignee_for(user),
            due_before=filters.due_before(),
            limit=limit,
        )
        assignees = await task_assignees(session)
    now = datetime.now(UTC)
    return [
        TaskRow(
            task,
            overdue=task.status == "open" and task.due_at is not None and task.due_at < now,
            mine=task.assignee == user.subject,
        )
        for task in rows
    ], list(assignees)


async def _page(
    request: Request,
    user: Principal,
    filters: TaskFilters,
    *,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    rows, assignees = await task_queue(request, user, filters)
    context = {
        "filters": filters,
        "rows": rows,
        "assignees": assignees,
        "statuses": STATUSES,
        "priorities": PRIORITIES,
        "outcomes": OUTCOMES,
        "errors": {},
        "failed_task": None,
        **extra,
    }
    return render(request, "tasks.html", context, status_code=status_code)


def _problem(error: ValidationError | HTTPException) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(problem["msg"] for problem in error.errors())
    return str(error.detail)


async def _refused(request: Request, user: Principal, task_id: str, field: str, message: str) -> HTMLResponse:
    """The queue again, the error by the task's field; nothing changed."""
    return await _page(
        request, user, TaskFilters(), status_code=422, errors={field: message}, failed_task=task_id
    )


@router.get("", response_class=HTMLResponse)
async def tasks(
    request: Request,
    user: ConsoleUser,
    queue: str = "",
    priority: str = "",
    status: str = "open",
    assignee: str = "",
    due_by: str = "",
) -> HTMLResponse:
    """The work queue."""
    return await _page(request, user, TaskFilters.of(queue, priority, status, assignee, due_by))


async def _assign(request: Request, task_id: str, assignee: str | None, *, claim: bool) -> str | None:
    """Give the task to `assignee`; the reason it was refused, or None."""
    async with get_services(request).sessions.begin() as session:
        if await assign_task(session, task_id, assignee, claim=claim) is not None:
            return None
        task = await get_task(session, task_id)
    if task is None:
        return f"no task {task_id!r}"
    if task.status != "open":
        return f"the task is already {task.status}"
    return f"{task.assignee} has already claimed this task"


@router.post("/{task_id}/claim", response_class=HTMLResponse)
async def claim(request: Request, task_id: str, user: ConsoleUser) -> Response:
    """Take an open task nobody else holds."""
    refused = await _assign(request, task_id, user.subject[:ASSIGNEE_MAX], claim=True)
    if refused is not None:
        return await _refused(request, user, task_id, "claim", refused)
    return RedirectResponse("/console/tasks?claimed=1", status_code=303)


@router.post("/{task_id}/assign", response_class=HTMLResponse)
async def reassign(request: Request, task_id: str, user: ConsoleUser) -> Response:
    """Give an open task to the named user, or to nobody (an empty name)."""
    form = await read_form(request)
    name = str(form.get("assignee") or "").strip()
    if len(name) > ASSIGNEE_MAX:
        return await _refused(request, user, task_id, "assignee", f"at most {ASSIGNEE_MAX} characters")
    refused = await _assign(request, task_id, name or None, claim=False)
    if refused is not None:
        return await _refused(request, user, task_id, "assignee", refused)
    return RedirectResponse("/console/tasks?assigned=1", status_code=303)


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
        return await _refused(request, user, task_id, "outcome", _problem(error))
    return RedirectResponse("/console/tasks?completed=1", status_code=303)
