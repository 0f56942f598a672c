"""The enrollment workflow, step by step, on the time-skipping server with the real activities."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Replayer

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.twilio_sms import TwilioSmsProvider
from activities.registry import build_activities
from aftercare.settings import Settings
from aftercare.store.enrollments import enrollment_history, get_enrollment
from models.search_attributes import CURRENT_STEP, ENROLLMENT_STATUS, JOURNEY_KEY, JOURNEY_VERSION, PATIENT_ID
from models.temporal import PatientEvent
from models.workflow_names import ENCOUNTER_CANCELLED_EVENT
from tests.conftest import suite_converter
from tests.workflows.fixtures import JourneyHarness, reach_step
from workflows import WORKFLOWS
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

GREETING = {
    "key": "greeting",
    "channel": "sms",
    "locale": "en",
    "body": "Hi {{ patient.given }}, this is your care team. Reply YES for a call.",
}


def journey(*steps: dict[str, Any], key: str = "wf-test", **extra: Any) -> dict[str, Any]:
    """A journey definition around the given steps."""
    return {"key": key, "version": 1, "name": "Workflow test", "steps": list(steps), **extra}


REPLY_JOURNEY = journey(
    {"id": "notify", "send": {"template": "greeting"}},
    {"id": "await-reply", "wait_for": {"event": "sms.reply", "timeout": "P2D", "on_timeout": "escalate"}},
    {
        "id": "route",
        "branch": [
            {"when": "%event.data.body.upper() = 'YES'", "goto": "thanks"},
            {"otherwise": "escalate"},
        ],
    },
    {
        "id": "escalate",
        "send": {"channel": "sms", "body": "{{ patient.given }}, we will call you."},
        "goto": "done",
    },
    {"id": "thanks", "send": {"channel": "sms", "body": "Thanks {{ patient.given }}!"}},
    {"id": "done", "end": {"outcome": "completed"}},
    exit=[{"event": "appointment.booked", "outcome": "goal_reached"}],
)


def reply(body: str, event_id: str | None = None, event_type: str = "sms.reply") -> PatientEvent:
    return PatientEvent(
        id=event_id or str(uuid.uuid4()), type=event_type, data={"body": body}, occurred_at=datetime.now(UTC)
    )


async def test_a_two_day_wait_passes_and_both_messages_carry_the_given_name(journeys: JourneyHarness) -> None:
    definition = journey(
        {"id": "welcome", "send": {"template": "greeting"}},
        {"id": "pause", "wait": {"duration": "P2D"}},
        {"id": "check-in", "send": {"channel": "sms", "body": "How are you, {{ patient.given }}?"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, patient = await journeys.enroll(definition, templates=(GREETING,))
        result = await journeys.finish(handle)

    assert result.status == "completed"
    given = patient["name"][0]["given"][0]
    sent = await journeys.messages(enrollment_id)
    assert [m.step_id for m in sent] == ["welcome", "check-in"]
    assert all(given in (m.body or "") and m.status == "sent" and m.to == "+15559784581" for m in sent)
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
        history = await enrollment_history(session, enrollment_id)
    assert enrollment is not None
    assert enrollment.status == "completed"
    assert [(row.step, row.result) for row in history] == [
        ("welcome", "sent"),
        ("pause", "waited"),
        ("check-in", "sent"),
    ]
    assert history[1].at - history[0].at >= timedelta(days=2) - timedelta(seconds=5)


async def test_a_journey_ending_with_a_send_projects_its_end_with_the_message(
    journeys: JourneyHarness,
) -> None:
    # The last send writes the completed projection in the message's transaction: one local activity.
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(
            journey({"id": "notify", "send": {"template": "greeting"}}), templates=(GREETING,)
        )
        result = await journeys.finish(handle)
        history = await handle.fetch_history()
    events = [event.event_type for event in history.events]

    assert (result.status, result.outcome) == ("completed", "completed")
    replayed = await Replayer(workflows=WORKFLOWS, data_converter=suite_converter()).replay_workflow(history)
    assert replayed.replay_failure is None
    assert events.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1
    assert events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
        history = await enrollment_history(session, enrollment_id)
    assert enrollment is not None
    assert (enrollment.status, enrollment.outcome, enrollment.current_step) == (
        "completed",
        "completed",
        None,
    )
    assert enrollment.ended_at is not None
    assert [(row.seq, row.step, row.result) for row in history] == [(1, "notify", "sent")]


async def test_a_yes_reply_takes_the_thanks_branch(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        await reach_step(handle, "await-reply")
        await handle.signal(EnrollmentWorkflow.deliver_event, reply("yes"))
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify", "thanks"]


async def test_no_reply_within_the_timeout_goes_to_on_timeout(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        result = await journeys.finish(handle)

    assert result.status == "completed"
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify", "escalate"]
    assert ("await-reply", "timeout") in await journeys.history(enrollment_id)


async def test_a_reply_arriving_while_the_message_is_being_sent_is_not_lost(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        await handle.signal(EnrollmentWorkflow.deliver_event, reply("YES"))
        result = await journeys.finish(handle)

    assert result.status == "completed"
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify", "thanks"]


async def test_the_same_event_delivered_twice_counts_once(journeys: JourneyHarness) -> None:
    definition = journey(
        {"id": "first", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
        {"id": "second", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "first")
        duplicate = reply("hello", event_id="twice")
        await handle.signal(EnrollmentWorkflow.deliver_event, duplicate)
        await handle.signal(EnrollmentWorkflow.deliver_event, duplicate)
        await journeys.finish(handle)

    assert await journeys.history(enrollment_id) == [("first", "event"), ("second", "timeout")]


async def test_an_exit_event_ends_the_enrollment_with_its_outcome(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        await reach_step(handle, "await-reply")
        await handle.signal(EnrollmentWorkflow.deliver_event, reply("", event_type="appointment.booked"))
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "goal_reached")
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify"]
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
    assert enrollment is not None
    assert (enrollment.status, enrollment.outcome) == ("exited", "goal_reached")
    assert (await handle.describe()).typed_search_attributes.get(ENROLLMENT_STATUS) == "exited"


async def test_a_visit_cancelled_at_its_source_ends_any_journey_with_the_outcome_it_names(
    journeys: JourneyHarness,
) -> None:
    definition = journey(
        {"id": "notify", "send": {"template": "greeting"}},
        {"id": "pause", "wait": {"duration": "P7D"}},
        {"id": "check-in", "send": {"channel": "sms", "body": "How are you?"}},
    )
    cancelled = PatientEvent(
        id="hl7v2:north:msg-13",
        type=ENCOUNTER_CANCELLED_EVENT,
        data={"encounter_id": "enc-1", "outcome": "discharge_cancelled"},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition, templates=(GREETING,))
        await reach_step(handle, "pause")
        await handle.signal(EnrollmentWorkflow.deliver_event, cancelled)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "discharge_cancelled")
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify"]


async def test_cancelling_records_cancelled_and_stops_the_journey(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        await reach_step(handle, "await-reply")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await journeys.finish(handle)

    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
    assert enrollment is not None
    assert enrollment.status == "cancelled"
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["notify"]


async def test_a_template_that_cannot_render_fails_the_step_and_sends_nothing(
    journeys: JourneyHarness,
) -> None:
    definition = journey({"id": "broken", "send": {"channel": "sms", "body": "Hi {{ patient.nickname }}"}})
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        with pytest.raises(WorkflowFailureError) as failure:
            await journeys.finish(handle)

    assert "step 'broken' failed" in str(failure.value.cause)
    assert "nickname" in str(failure.value.cause)
    assert await journeys.messages(enrollment_id) == []
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
        history = await enrollment_history(session, enrollment_id)
    assert enrollment is not None
    assert (enrollment.status, enrollment.outcome) == ("failed", "error")
    assert "nickname" in (history[-1].detail or "")


async def test_a_step_visited_twice_sends_twice_with_distinct_idempotency_keys(
    journeys: JourneyHarness,
) -> None:
    definition = journey(
        {"id": "remind", "send": {"channel": "sms", "body": "Reminder for {{ patient.given }}"}},
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P1D", "on_timeout": "remind"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "listen")
        await journeys.env.sleep(timedelta(days=1, minutes=1))
        async with asyncio.timeout(20):
            while len(await journeys.messages(enrollment_id)) < 2:
                await asyncio.sleep(0.05)
        await reach_step(handle, "listen")
        await handle.signal(EnrollmentWorkflow.deliver_event, reply("stop reminding me"))
        await journeys.finish(handle)

    keys = [m.idempotency_key for m in await journeys.messages(enrollment_id)]
    assert keys[:2] == [f"{enrollment_id}/remind/1", f"{enrollment_id}/remind/2"]


async def test_search_attributes_show_patient_journey_and_current_step(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, _, patient = await journeys.enroll(REPLY_JOURNEY, templates=(GREETING,))
        await reach_step(handle, "await-reply")
        running = await handle.describe()
        await handle.signal(EnrollmentWorkflow.deliver_event, reply("YES"))
        await journeys.finish(handle)
        finished = await handle.describe()

    attributes = running.typed_search_attributes
    assert attributes.get(PATIENT_ID) == patient["id"]
    assert attributes.get(JOURNEY_KEY) == "wf-test"
    assert attributes.get(JOURNEY_VERSION) == 1
    assert attributes.get(CURRENT_STEP) == "await-reply"
    assert finished.typed_search_attributes.get(ENROLLMENT_STATUS) == "completed"
    assert finished.typed_search_attributes.get(CURRENT_STEP) is None


async def test_waiting_until_a_local_time_resumes_at_that_time_in_the_hospital_zone(
    journeys: JourneyHarness,
) -> None:
    definition = journey(
        {"id": "morning", "wait": {"until": {"time": "09:00"}}},
        {"id": "hello", "send": {"channel": "sms", "body": "Good morning {{ patient.given }}"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await journeys.finish(handle)

    async with journeys.sessions() as session:
        history = await enrollment_history(session, enrollment_id)
    waited_until = history[0].at.astimezone(ZoneInfo("America/New_York"))
    assert (waited_until.hour, waited_until.minute) == (9, 0)
    assert [m.step_id for m in await journeys.messages(enrollment_id)] == ["hello"]


async def test_a_provider_that_cannot_be_reached_is_retried_visibly_then_recorded_as_failed(
    journeys: JourneyHarness, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    # Twilio's SDK aimed at a port where nothing listens: every attempt is refused.
    unreachable = TwilioSmsProvider("AC" + "0" * 32, "token", "+15005550006", base_url="http://127.0.0.1:9")
    providers = ProviderRegistry({"sms": unreachable}, OutboxProvider())
    definition = journey(
        {"id": "notify", "send": {"channel": "sms", "body": "Hi {{ patient.given }}"}},
        {"id": "after", "send": {"channel": "email", "subject": "x", "body": "y"}},
    )
    async with journeys.make_worker(
        activities=build_activities(sessions, settings, journeys.env.client, providers)
    ):
        handle, enrollment_id, _ = await journeys.enroll(definition)
        result = await journeys.finish(handle)

    assert result.status == "completed"
    [sms, email] = await journeys.messages(enrollment_id)
    assert sms.status == "failed"
    assert (sms.reason or "").startswith("gave up after 12 attempts")
    assert sms.attempts == 14  # 2 fast local attempts, then 12 by the regular activity
    assert email.status == "skipped"
    history = await handle.fetch_history()
    scheduled = [
        event for event in history.events if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert [event.activity_task_scheduled_event_attributes.activity_type.name for event in scheduled] == [
        "send_message"
    ]
    assert await journeys.history(enrollment_id) == [("notify", "failed"), ("after", "skipped")]
