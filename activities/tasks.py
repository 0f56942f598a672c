"""Activities that touch care-team work queues."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.variables import load_variables, render_or_fail
from aftercare.facilities.calendar import due_at
from aftercare.facilities.patient_calendar import patient_calendar
from aftercare.store.tasks import create_task
from models.temporal import CreateTaskInput, CreateTaskResult


class TaskActivities:
    """Creates tasks for care-team queues."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hospital_timezone: str = "UTC",
        *,
        write_back: bool = False,
    ) -> None:
        self._sessions = sessions
        self._hospital_timezone = hospital_timezone
        self._write_back = write_back

    @activity.defn(name="create_task")
    async def create_task(self, request: CreateTaskInput) -> CreateTaskResult:
        """Create the step's task once, its title and description rendered with the enrollment's variables."""
        call, task = request.call, request.task
        async with self._sessions.begin() as session:
            variables = await load_variables(
                session,
                call.scope,
                journey_key=call.journey_key,
                step_id=call.step_id,
                with_patient_resource=False,
                hospital_timezone=self._hospital_timezone,
            )
            names = variables.template_variables()
            title = render_or_fail(task.title, names, "the task's title")
            description = (
                render_or_fail(task.description, names, "the task's description")
                if task.description
                else None
            )
            calendar = (
                await patient_calendar(session, call.scope.patient_id, self._hospital_timezone)
                if task.due_business_days is not None
                else None
            )
            due = due_at(
                datetime.now(UTC),
                duration=task.due,
                business_days=task.due_business_days,
                zone_name=calendar.timezone if calendar is not None else self._hospital_timezone,
                holidays=calendar.holidays if calendar is not None else (),
            )
            task_id = await create_task(
                session,
                {
                    "id": str(uuid.uuid4()),
                    "idempotency_key": call.idempotency_key,
                    "queue": task.queue,
                    "priority": task.priority,
                    "title": title,
                    "description": description,
                    "patient_id": call.scope.patient_id,
                    "enrollment_id": call.scope.enrollment_id,
                    "journey_key": call.journey_key,
                    "step_id": call.step_id,
                    "due_at": due,
                },
            )
        return CreateTaskResult(task_id=task_id, queue=task.queue, write_back=self._write_back)
