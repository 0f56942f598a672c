"""The rest of the step library on the time-skipping server: tasks, attributes, A/B splits, enrolling
in another journey, waits until a moment from the data, pause and resume, continue-as-new, versions,
and a journey written in Python."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowUpdateFailedError

import workflows.steps
from aftercare.store.attributes import attributes_of
from aftercare.store.enrollments import enrollment_history, get_enrollment
from aftercare.store.resources import StoredVersion, store_resources
from aftercare.store.tasks import list_tasks
from journeys.code.discharge_callback import DischargeCallback
from journeys.sync import sync_code_journeys
from models.journey import SplitPath
from models.search_attributes import ENROLLMENT_STATUS
from models.tables import Enrollment
from models.temporal import EnrollmentTrigger, PatientEvent, PauseRequest
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient, publish
from tests.workflows.fixtures import JourneyHarness, reach_step
from tests.workflows.test_enrollment import journey
from workflows.enrollment import EnrollmentWorkflow
from workflows.support import choose_path

pytestmark = pytest.mark.usefixtures("empty_database")


def event(event_type: str, **data: Any) -> PatientEvent:
    return PatientEvent(id=str(uuid.uuid4()), type=event_type, data=data, occurred_at=datetime.now(UTC))


async def test_a_task_is_created_for_the_queue_and_its_completion_moves_the_journey_on(
    journeys: JourneyHarness,
) -> None:
    definition = journey(
        {
            "id": "call",
            "task": {
                "queue": "care-coordinators",
                "title": "Call {{ patient.name }}",
                "due": "P1D",
                "priority": "high",
                "description": "Asked for a call",
            },
        },
        {"id": "await-call", "wait_for": {"event": "task.completed", "timeout": "P2D"}},
        {
            "id": "thanks",
            "send": {"channel": "sms", "body": "Your care team called: {{ event.data.outcome }}"},
        },
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "await-call")
        async with journeys.sessions() as session:
            [task] = await list_tasks(session, queue="care-coordinators")
        assert (task.title, task.priority, task.status, task.step_id) == (
            "Call Abdul Koepp",
            "high",
            "open",
            "call",
        )
        assert task.due_at is not None
        assert task.due_at - task.created_at >= timedelta(hours=23)
        await handle.signal(
            EnrollmentWorkflow.deliver_event, event("task.completed", task_id=task.id, outcome="reached")
        )
        await journeys.finish(handle)

    [message] = await journeys.messages(enrollment_id)
    assert message.body == "Your care team called: reached"


async def test_update_sets_attributes_that_later_steps_read(journeys: JourneyHarness) -> None:
    definition = journey(
        {"id": "ask", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
        {"id": "remember", "update": {"set": {"preferred_time": "{{ event.data.body }}", "asked": True}}},
        {"id": "route", "branch": [{"when": "%attributes.preferred_time = 'morning'", "goto": "morning"}]},
        {"id": "evening", "send": {"channel": "sms", "body": "Evening it is"}, "goto": "done"},
        {
            "id": "morning",
            "send": {"channel": "sms", "body": "We will call in the {{ patient.attributes.preferred_time }}"},
        },
        {"id": "done", "end": {}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "ask")
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply", body="morning"))
        await journeys.finish(handle)

    async with journeys.sessions() as session:
        assert await attributes_of(session, ABDUL_PATIENT_ID) == {"preferred_time": "morning", "asked": True}
    assert [m.body for m in await journeys.messages(enrollment_id)] == ["We will call in the morning"]


def test_a_split_is_the_same_for_an_enrollment_and_follows_the_weights_across_enrollments() -> None:
    arms = [SplitPath(goto="a", weight=1), SplitPath(goto="b", weight=3), SplitPath(goto="never", weight=0)]
    assert choose_path(arms, "enrollment-1/split/1") == choose_path(arms, "enrollment-1/split/1")
    counts = Counter(choose_path(arms, f"enrollment-{n}/split/1").goto for n in range(20000))
    assert counts["never"] == 0
    assert 0.72 < counts["b"] / 20000 < 0.78


async def test_a_split_sends_the_enrollment_down_one_recorded_path(journeys: JourneyHarness) -> None:
    definition = journey(
        {
            "id": "ab",
            "split": [
                {"goto": "variant-a", "weight": 1, "name": "short"},
                {"goto": "variant-b", "weight": 1, "name": "long"},
            ],
        },
        {"id": "variant-a", "send": {"channel": "sms", "body": "A"}, "goto": "done"},
        {"id": "variant-b", "send": {"channel": "sms", "body": "B"}},
        {"id": "done", "end": {}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await journeys.finish(handle)

    history = await journeys.history(enrollment_id)
    chosen = choose_path(
        [SplitPath(goto="variant-a", name="short"), SplitPath(goto="variant-b", name="long")],
        f"{enrollment_id}/ab/1",
    )
    assert history[0] == ("ab", f"path {chosen.label}")
    assert [m.body for m in await journeys.messages(enrollment_id)] == [
        "A" if chosen.goto == "variant-a" else "B"
    ]


async def test_enroll_starts_another_journey_for_the_patient_once(journeys: JourneyHarness) -> None:
    await publish(
        journeys.sessions,
        journey({"id": "hello", "send": {"channel": "sms", "body": "Other journey"}}, key="other"),
    )
    definition = journey({"id": "hand-over", "enroll": {"journey": "other", "context": {"from": "wf-test"}}})
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await journeys.finish(handle)
        async with journeys.sessions() as session:
            [child] = (
                await session.scalars(select(Enrollment).where(Enrollment.journey_key == "other"))
            ).all()
        child_handle = journeys.env.client.get_workflow_handle_for(EnrollmentWorkflow.run, child.workflow_id)
        await journeys.finish(child_handle)

    assert child.trigger == {
        "kind": "enrollment",
        "resource": None,
        "event": None,
        "parent_enrollment_id": enrollment_id,
    }
    assert child.context == {"from": "wf-test"}
    assert await journeys.history(enrollment_id) == [("hand-over", "enrolled")]
    assert [m.body for m in await journeys.messages(child.id)] == ["Other journey"]


async def booked_appointment(
    journeys: JourneyHarness, patient_id: str, appointment_id: str, *, in_days: int
) -> tuple[datetime, StoredVersion]:
    """A booked Appointment starting `in_days` from the test server's clock, stored as a pending trigger."""
    now = await journeys.env.get_current_time()  # the test server's clock, moved on by earlier tests
    start = now.replace(microsecond=0) + timedelta(days=in_days)
    appointment = {
        "resourceType": "Appointment",
        "id": appointment_id,
        "status": "booked",
        "start": start.isoformat(),
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }
    async with journeys.sessions.begin() as session:
        stored = await store_resources(session, [appointment], source="test", phone_region="US")
    [version] = stored.pending_triggers
    return start, version


async def test_waiting_until_two_days_before_an_appointment_in_the_data(journeys: JourneyHarness) -> None:
    patient = await load_synthea_patient(journeys.sessions)
    start, version = await booked_appointment(journeys, patient["id"], "appt-1", in_days=10)
    definition = await publish(
        journeys.sessions,
        journey(
            {"id": "until", "wait": {"at": {"expression": "%trigger.start", "offset": "-P2D"}}},
            {
                "id": "remind",
                "send": {
                    "channel": "sms",
                    "body": "See you {{ trigger.start | datetime('%d %B at %H:%M', tz=timezone) }}",
                },
            },
            {"id": "too-late", "wait": {"at": {"expression": "%trigger.start", "offset": "-P30D"}}},
        ),
    )
    async with journeys.make_worker():
        enrollment_id = await journeys.run_to_end(
            definition, patient["id"], EnrollmentTrigger(kind="fhir", resource=version.ref)
        )

    async with journeys.sessions() as session:
        history = await enrollment_history(session, enrollment_id)
    assert [(row.step, row.result) for row in history] == [
        ("until", "waited"),
        ("remind", "sent"),
        ("too-late", "passed"),
    ]
    assert abs((history[0].at - (start - timedelta(days=2))).total_seconds()) < 60
    [message] = await journeys.messages(enrollment_id)
    local = start.astimezone(ZoneInfo("America/New_York"))
    assert message.body == f"See you {local.strftime('%d %B at %H:%M')}"


async def test_a_moment_already_past_jumps_to_if_passed(journeys: JourneyHarness) -> None:
    patient = await load_synthea_patient(journeys.sessions)
    _, version = await booked_appointment(journeys, patient["id"], "appt-soon", in_days=3)
    definition = await publish(
        journeys.sessions,
        journey(
            {
                "id": "until-week-before",
                "wait": {
                    "at": {"expression": "%trigger.start", "offset": "-P7D", "if_passed": "until-day-before"}
                },
            },
            {"id": "week-before", "send": {"channel": "sms", "body": "in a week"}},
            {
                "id": "until-day-before",
                "wait": {"at": {"expression": "%trigger.start", "offset": "-P1D", "if_passed": "done"}},
            },
            {"id": "day-before", "send": {"channel": "sms", "body": "tomorrow"}},
            {"id": "done", "end": {"outcome": "reminded"}},
        ),
    )
    async with journeys.make_worker():
        enrollment_id = await journeys.run_to_end(
            definition, patient["id"], EnrollmentTrigger(kind="fhir", resource=version.ref)
        )

    async with journeys.sessions() as session:
        history = await enrollment_history(session, enrollment_id)
    assert [(row.step, row.result) for row in history][:3] == [
        ("until-week-before", "passed"),
        ("until-day-before", "waited"),
        ("day-before", "sent"),
    ]
    assert [m.body for m in await journeys.messages(enrollment_id)] == ["tomorrow"]


async def test_a_paused_enrollment_holds_before_its_next_step_until_resumed(journeys: JourneyHarness) -> None:
    definition = journey(
        {"id": "first", "send": {"channel": "sms", "body": "one"}},
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
        {"id": "second", "send": {"channel": "sms", "body": "two"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "listen")
        paused = await handle.execute_update(
            EnrollmentWorkflow.pause, PauseRequest(reason="patient on holiday")
        )
        assert paused.paused
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(EnrollmentWorkflow.pause, PauseRequest())
        assert "already paused" in str(refused.value.cause)
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply", body="ok"))
        async with asyncio.timeout(10):
            while (await handle.query(EnrollmentWorkflow.state)).history[-1].step != "listen":
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert [m.body for m in await journeys.messages(enrollment_id)] == ["one"]
        description = await handle.describe()
        assert description.typed_search_attributes.get(ENROLLMENT_STATUS) == "paused"
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "Paused" in metadata.current_details
        async with journeys.sessions() as session:
            row = await get_enrollment(session, enrollment_id)
        assert row is not None
        assert row.paused
        await handle.execute_update(EnrollmentWorkflow.resume, PauseRequest())
        await journeys.finish(handle)

    assert [m.body for m in await journeys.messages(enrollment_id)] == ["one", "two"]


async def test_current_details_say_what_the_step_waits_for_and_until_when(journeys: JourneyHarness) -> None:
    definition = journey({"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P2D"}})
    async with journeys.make_worker():
        handle, _, _ = await journeys.enroll(definition)
        await reach_step(handle, "listen")
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply"))
        await journeys.finish(handle)

    # The test server's clock runs ahead of the wall clock by what earlier tests skipped.
    assert re.fullmatch(
        r"\*\*listen\*\*: Waiting for sms\.reply until \d{4}-\d\d-\d\d \d\d:\d\d UTC",
        metadata.current_details,
    )


async def test_a_long_journey_continues_as_new_without_losing_its_count(
    journeys: JourneyHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workflows.steps, "CONTINUE_AS_NEW_AFTER_EVENTS", 40)
    definition = journey(
        {"id": "remind", "send": {"channel": "sms", "body": "Reminder"}},
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "PT1H", "on_timeout": "remind"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(definition)
        async with asyncio.timeout(60):
            while len(await journeys.messages(enrollment_id)) < 12:
                await journeys.env.sleep(timedelta(hours=1))
        await reach_step(handle, "listen")
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply", body="stop"))
        await journeys.finish(handle)

    last_run = await handle.fetch_history()
    keys = [m.idempotency_key for m in await journeys.messages(enrollment_id)]
    assert len(keys) == len(set(keys)) >= 12
    assert keys[:3] == [f"{enrollment_id}/remind/{n}" for n in (1, 2, 3)]
    started = last_run.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the enrollment never continued as new"
    assert len(last_run.events) < 60
    async with journeys.sessions() as session:
        enrollment = await get_enrollment(session, enrollment_id)
        history = await enrollment_history(session, enrollment_id)
    assert enrollment is not None
    assert enrollment.status == "completed"
    assert [row.seq for row in history] == list(range(1, len(history) + 1))


async def test_version_two_does_not_disturb_enrollments_running_on_version_one(
    journeys: JourneyHarness,
) -> None:
    version_one = journey(
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P1D"}},
        {"id": "v1-only", "send": {"channel": "sms", "body": "from version 1"}},
    )
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(version_one)
        await reach_step(handle, "listen")
        await publish(
            journeys.sessions,
            {
                **version_one,
                "version": 2,
                "steps": [{"id": "v2-only", "send": {"channel": "sms", "body": "from version 2"}}],
            },
        )
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply"))
        await journeys.finish(handle)

    assert [m.body for m in await journeys.messages(enrollment_id)] == ["from version 1"]


async def test_a_journey_written_in_python_runs_like_a_definition(journeys: JourneyHarness) -> None:
    await sync_code_journeys(journeys.sessions)
    patient = await load_synthea_patient(journeys.sessions)
    async with journeys.make_worker():
        outcome = await journeys.starter.enroll(
            DischargeCallback.definition, patient["id"], EnrollmentTrigger(kind="manual")
        )
        assert outcome.enrollment_id is not None
        handle = journeys.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{outcome.enrollment_id}"
        )
        await reach_step(handle, "await-answer")
        await handle.signal(EnrollmentWorkflow.deliver_event, event("sms.reply", body="2"))
        await reach_step(handle, "await-call")
        async with journeys.sessions() as session:
            [task] = await list_tasks(session, queue="care-coordinators")
        await handle.signal(EnrollmentWorkflow.deliver_event, event("task.completed", task_id=task.id))
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "completed")
    assert task.title == "Call Abdul Koepp after discharge"
    assert [m.step_id for m in await journeys.messages(outcome.enrollment_id)] == ["welcome", "week"]
    assert await journeys.history(outcome.enrollment_id) == [
        ("welcome", "sent"),
        ("await-answer", "event"),
        ("call", "created"),
        ("await-call", "event"),
        ("until-week", "waited"),
        ("week", "sent"),
    ]


async def test_a_python_journey_exits_on_its_exit_rule(journeys: JourneyHarness) -> None:
    await sync_code_journeys(journeys.sessions)
    patient = await load_synthea_patient(journeys.sessions)
    async with journeys.make_worker():
        outcome = await journeys.starter.enroll(
            DischargeCallback.definition, patient["id"], EnrollmentTrigger(kind="manual")
        )
        handle = journeys.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{outcome.enrollment_id}"
        )
        await reach_step(handle, "await-answer")
        await handle.signal(EnrollmentWorkflow.deliver_event, event("readmission.admitted"))
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("exited", "readmitted")
