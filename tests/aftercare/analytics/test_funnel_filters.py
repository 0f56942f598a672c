"""A funnel filtered by the segment its enrollments entered through and by the channel its steps sent
on: patients enrolled by two segments' refreshes (the trigger the segment driver gives) and by hand run
a journey that texts, then emails, then waits, on a time-skipping server. Every filtered number is the
one the history implies, the CSV carries the same (small cells hidden), and the rollups equal their
recomputation from the raw facts, before and after a rebuild."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.rebuild import compare, rebuild
from aftercare.enrollment.starter import event_trigger
from aftercare.segments.dynamic import ENTERED_EVENT
from models.temporal import EnrollmentTrigger, PatientEvent
from tests.helpers import load_synthea_patient, publish
from tests.workflows.fixtures import JourneyHarness
from workflows.enrollment import EnrollmentWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

JOURNEY = {
    "key": "analytics-filters",
    "version": 1,
    "name": "Text then email",
    "reentry": "always",
    "steps": [
        {"id": "text", "send": {"channel": "sms", "body": "Your follow-up is due."}},
        {
            "id": "mail",
            "send": {"channel": "email", "subject": "Follow-up", "body": "Your follow-up is due."},
        },
        {"id": "pause", "wait": {"duration": "PT1H"}},
        {"id": "done", "end": {"outcome": "reached"}},
    ],
}
FUNNEL = "/v1/analytics/journeys/analytics-filters/funnel"


def _entered_by(segment: str, number: int) -> EnrollmentTrigger:
    """The trigger a segment's refresh enrolls a newcomer with."""
    event = PatientEvent(
        id=f"{ENTERED_EVENT}:{segment}:{number}",
        type=ENTERED_EVENT,
        data={"segment": segment},
        occurred_at=datetime.now(UTC),
    )
    return event_trigger(event)


def _steps(body: dict[str, Any]) -> dict[str, tuple[int, int, int, dict[str, int]]]:
    """Per step listed: entered, passed, waiting and results."""
    return {
        step["id"]: (step["entered"], step["passed"], step["waiting"], step["results"])
        for step in body["steps"]
    }


async def _funnel(api: httpx.AsyncClient, **filters: str) -> dict[str, Any]:
    answer = await api.get(FUNNEL, params=filters)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_funnel_filtered_by_segment_and_channel(
    journeys: JourneyHarness, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    patient = await load_synthea_patient(journeys.sessions)
    journey = await publish(journeys.sessions, JOURNEY)
    async with journeys.make_worker():
        for number in range(3):
            await journeys.run_to_end(journey, patient["id"], _entered_by("diabetes", number))
        for number in range(2):
            await journeys.run_to_end(journey, patient["id"], _entered_by("heart-failure", number))
        await journeys.run_to_end(journey, patient["id"], EnrollmentTrigger(kind="manual"))
        # One more through heart-failure stays waiting in `pause` (time skipping is locked here).
        waiting = await journeys.starter.enroll(journey, patient["id"], _entered_by("heart-failure", 9))
        assert waiting.enrollment_id is not None
        handle = journeys.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{waiting.enrollment_id}"
        )
        try:
            for _ in range(300):
                if _steps(await _funnel(api)).get("pause", (0, 0, 0, {}))[2] == 1:
                    break
                await asyncio.sleep(0.1)
            everything = await _funnel(api)
            by_segment = {
                name: await _funnel(api, segment=name) for name in ("diabetes", "heart-failure", "_none")
            }
            by_channel = {name: await _funnel(api, channel=name) for name in ("sms", "email", "letter")}
            both = await _funnel(api, segment="heart-failure", channel="email")
            csv = await api.get(FUNNEL, params={"segment": "diabetes", "channel": "sms", "format": "csv"})
            exact = await api.get(
                FUNNEL,
                params={"segment": "diabetes", "channel": "sms", "format": "csv", "small_cells": "show"},
            )
        finally:
            await handle.terminate("the test is over")

    def funnel_of(entered: int, waiting: int = 0) -> dict[str, tuple[int, int, int, dict[str, int]]]:
        """The steps of `entered` enrollments, `waiting` of them still in `pause`. The email is recorded
        and blocked (no email provider here): still a step on the email channel."""
        ended = entered - waiting
        return {
            "text": (entered, entered, 0, {"sent": entered}),
            "mail": (entered, entered, 0, {"skipped": entered}),
            "pause": (entered, ended, waiting, {"waited": ended}),
            "done": (ended, ended, 0, {"ended": ended}),
        }

    assert _steps(everything) == funnel_of(7, waiting=1)
    assert (everything["entered"], everything["outcomes"]) == (7, {"reached": 6})
    assert (everything["segment"], everything["channel"]) == (None, None)
    assert (by_segment["diabetes"]["entered"], by_segment["diabetes"]["outcomes"]) == (3, {"reached": 3})
    assert _steps(by_segment["diabetes"]) == funnel_of(3)
    heart = by_segment["heart-failure"]
    assert (heart["entered"], heart["outcomes"], heart["segment"]) == (3, {"reached": 2}, "heart-failure")
    assert _steps(heart) == funnel_of(3, waiting=1)
    assert (by_segment["_none"]["entered"], by_segment["_none"]["outcomes"]) == (1, {"reached": 1})
    assert _steps(by_segment["_none"]) == funnel_of(1)
    # A channel keeps the steps that sent on it; the journey's entries and outcomes are not per channel.
    assert _steps(by_channel["sms"]) == {"text": (7, 7, 0, {"sent": 7})}
    assert _steps(by_channel["email"]) == {"mail": (7, 7, 0, {"skipped": 7})}
    assert _steps(by_channel["letter"]) == {}
    assert [(body["entered"], body["outcomes"]) for body in by_channel.values()] == [(7, {"reached": 6})] * 3
    assert by_channel["sms"]["channel"] == "sms"
    assert _steps(both) == {"mail": (3, 3, 0, {"skipped": 3})}
    assert (both["entered"], both["outcomes"]) == (3, {"reached": 2})
    # Times to a step are those of the filtered records (the server's clock runs ahead of the
    # database's after its skips, so only their presence is certain).
    assert [step["median_seconds"] is not None for step in both["steps"]] == [True]
    assert [o["median_seconds"] is not None for o in both["outcome_details"]] == [True]
    # The CSV has the same rows, its small cells hidden unless asked for.
    assert csv.status_code == 200, csv.text
    assert 'filename="funnel-analytics-filters-diabetes-sms.csv"' in csv.headers["content-disposition"]
    rows = [line.split(",")[:6] for line in csv.text.splitlines()]
    assert rows == [
        ["step", "entered", "passed", "waiting", "timed_out", "exited"],
        ["text", "<11", "<11", "0", "0", "0"],
        ["outcome:reached", "<11", "", "", "", ""],
    ]
    assert [line.split(",")[:3] for line in exact.text.splitlines()[1:]] == [
        ["text", "3", "3"],
        ["outcome:reached", "3", ""],
    ]

    assert await compare(engine) == []
    await rebuild(engine)
    assert await compare(engine) == []
    assert await _funnel(api, segment="heart-failure", channel="email") == both
    assert await _funnel(api) == everything


async def test_an_unknown_channel_is_a_422(api: httpx.AsyncClient) -> None:
    answer = await api.get(FUNNEL, params={"channel": "fax"})

    assert answer.status_code == 422
