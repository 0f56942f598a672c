"""Temporal schedules Aftercare keeps: created when a worker starts, left alone when they exist."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from models.temporal import ReconcileInput
from workflows.reconcile import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW

RECONCILE_EVERY = timedelta(minutes=5)


async def ensure_schedules(client: Client, task_queue: str) -> list[str]:
    """Create missing schedules; returns the ids created."""
    created = []
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            ReconcileInput(),
            id="aftercare-reconcile",
            task_queue=task_queue,
            static_summary="Keep enrollment projections in step with their workflows",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
        created.append(RECONCILE_SCHEDULE_ID)
    return created
