"""The `call` step on the time-skipping server with the real activities (calls go to the outbox here):
a call nobody answers is placed again after the policy's interval, and after the last one the journey
falls back to a letter; an answered call is not repeated and its answers reach the next steps."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aftercare.store.enrollments import enrollment_history
from models.temporal import PatientEvent
from tests.workflows.fixtures import JourneyHarness, reach_step
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

CALL = {
    "say": "Hello {{ patient.given }}, this is your care team.",
    "gather": [{"id": "feeling", "prompt": "Press 1 if you feel well, 2 if you feel worse.", "digits": "12"}],
    "retries": {"attempts": 1, "every": "PT2H", "outcome_timeout": "PT30M"},
    "on_unanswered": "letter",
}
JOURNEY: dict[str, Any] = {
    "key": "call-then-letter",
    "version": 1,
    "name": "Call, else a letter",
    "steps": [
        {"id": "check-call", "call": CALL},
        {
            "id": "await-call",
            "wait_for": {"event": "voice.answered", "timeout": "PT1M", "on_timeout": "letter"},
        },
        {
            "id": "route",
            "branch": [
                {"when": "%event.data.answers.feeling = '2'", "goto": "worse"},
                {"otherwise": "well"},
            ],
        },
        {"id": "letter", "send": {"channel": "letter", "body": "Dear {{ patient.given }}, please call us."}},
        {"id": "unreached", "end": {"outcome": "letter_sent"}},
        {"id": "worse", "end": {"outcome": "feels_worse"}},
        {"id": "well", "end": {"outcome": "feels_well"}},
    ],
}


def call_event(outcome: str, message_id: str, answers: dict[str, str] | None = None) -> PatientEvent:
    return PatientEvent(
        id=str(uuid.uuid4()),
        type=f"voice.{outcome}",
        data={"call_id": message_id, "outcome": outcome, "answers": answers or {}},
        occurred_at=datetime.now(UTC),
    )


async def test_unanswered_calls_are_retried_after_the_interval_then_a_letter_goes(
    journeys: JourneyHarness,
) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(JOURNEY)
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "letter_sent")
    sent = await journeys.messages(enrollment_id)
    assert [(m.step_id, m.channel) for m in sent] == [
        ("check-call", "voice"),
        ("check-call", "voice"),
        ("letter", "letter"),
    ]
    assert sent[0].idempotency_key != sent[1].idempotency_key
    async with journeys.sessions() as session:
        history = [(row.step, row.result, row.at) for row in await enrollment_history(session, enrollment_id)]
    assert [(step, outcome) for step, outcome, _ in history] == [
        ("check-call", "sent"),
        ("check-call:retry", "waited"),
        ("check-call", "sent"),
        ("letter", "queued"),
        ("unreached", "ended"),
    ]
    # Half an hour for the first call's outcome, then the policy's two hours.
    assert history[2][2] - history[0][2] >= timedelta(hours=2, minutes=30)


async def test_a_busy_line_is_called_again_and_an_answer_is_branched_on(journeys: JourneyHarness) -> None:
    async with journeys.make_worker():
        handle, enrollment_id, _ = await journeys.enroll(JOURNEY)
        [first] = await calls_placed(journeys, enrollment_id, 1)
        await handle.signal(EnrollmentWorkflow.deliver_event, call_event("busy", first))
        await reach_step(handle, "check-call:retry")
        await journeys.env.sleep(timedelta(hours=2))
        [_, second] = await calls_placed(journeys, enrollment_id, 2)
        await handle.signal(
            EnrollmentWorkflow.deliver_event, call_event("answered", second, {"feeling": "2"})
        )
        result = await journeys.finish(handle)

    assert (result.status, result.outcome) == ("completed", "feels_worse")
    assert [m.channel for m in await journeys.messages(enrollment_id)] == ["voice", "voice"]
    assert ("letter", "queued") not in await journeys.history(enrollment_id)


async def calls_placed(journeys: JourneyHarness, enrollment_id: str, count: int) -> list[str]:
    """The ids of the enrollment's calls, once `count` of them were placed."""
    async with asyncio.timeout(20):
        while len(sent := await journeys.messages(enrollment_id)) < count:
            await asyncio.sleep(0.05)
    return [message.id for message in sent]
