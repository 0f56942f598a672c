"""A send deferred by the guardrails sleeps durably on the workflow's clock and is sent once when the
quiet hours end, under the same idempotency key (time-skipping server, real activities)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities
from aftercare.settings import Settings
from models.tables import SendDecision
from tests.workflows.fixtures import JourneyHarness
from tests.workflows.test_enrollment import journey

pytestmark = pytest.mark.usefixtures("empty_database")


async def test_a_send_in_quiet_hours_waits_for_their_end_and_is_sent_once(
    journeys: JourneyHarness,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    task_queue: str,
    time_skipping_env: WorkflowEnvironment,
) -> None:
    now = await time_skipping_env.get_current_time()  # the server's clock, ahead after other tests
    quiet: dict[str, Any] = {
        "temporal_task_queue": task_queue,
        "hospital_timezone": "UTC",  # the Synthea patient has no time zone of their own
        "quiet_hours_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_hours_end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    activities = build_activities(sessions, settings.model_copy(update=quiet), time_skipping_env.client)
    async with journeys.make_worker(activities=activities):
        handle, enrollment_id, _ = await journeys.enroll(
            journey({"id": "notify", "send": {"channel": "sms", "body": "Hello {{ patient.given }}"}})
        )
        await journeys.finish(handle)
    [message] = await journeys.messages(enrollment_id)
    assert message.status == "sent"
    assert message.idempotency_key == f"{enrollment_id}/notify/1"
    async with sessions() as session:
        decisions = list(await session.scalars(select(SendDecision).order_by(SendDecision.id)))
    assert [(d.decision, d.rule) for d in decisions] == [("deferred", "quiet_hours"), ("sent", "allowed")]
    deferred_until = decisions[0].defer_until
    assert deferred_until is not None
    assert timedelta(hours=1, minutes=58) < deferred_until - now < timedelta(hours=2, minutes=1)
    assert await journeys.history(enrollment_id) == [("notify", "sent")]
