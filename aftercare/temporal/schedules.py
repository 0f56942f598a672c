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
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError

from models.segment_runs import RefreshSegmentsInput
from models.temporal import PollSourceInput, ReconcileInput
from models.workflow_names import (
    FHIR_POLL_WORKFLOW,
    RECONCILE_SCHEDULE_ID,
    RECONCILE_WORKFLOW,
    REFRESH_SEGMENTS_SCHEDULE_ID,
    REFRESH_SEGMENTS_WORKFLOW,
)

RECONCILE_EVERY = timedelta(minutes=5)
REFRESH_SEGMENTS_EVERY = timedelta(minutes=15)


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
    segments = Schedule(
        action=ScheduleActionStartWorkflow(
            REFRESH_SEGMENTS_WORKFLOW,
            RefreshSegmentsInput(),
            id="aftercare-refresh-segments",
            task_queue=task_queue,
            static_summary="Refresh segment membership; enroll who entered, tell journeys who left",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=REFRESH_SEGMENTS_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(REFRESH_SEGMENTS_SCHEDULE_ID, segments)
        created.append(REFRESH_SEGMENTS_SCHEDULE_ID)
    return created


def poll_schedule_id(source_key: str) -> str:
    """The id of a FHIR source's polling schedule."""
    return f"aftercare-fhir-poll-{source_key}"


async def ensure_poll_schedule(client: Client, task_queue: str, source_key: str, every_seconds: int) -> None:
    """Poll the source every `every_seconds` (create or update the schedule); 0 removes it."""
    schedule_id = poll_schedule_id(source_key)
    handle = client.get_schedule_handle(schedule_id)
    if every_seconds <= 0:
        with contextlib.suppress(RPCError):
            await handle.delete()
        return
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            FHIR_POLL_WORKFLOW,
            PollSourceInput(source_key=source_key),
            id=f"aftercare-fhir-poll-{source_key}",
            task_queue=task_queue,
            static_summary=f"Poll FHIR source {source_key} for changes since the last poll",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(update: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(replace)
