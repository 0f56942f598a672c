"""A journey's A/B split, compared: enrollments sent down each path (exposures) and those that reached the
goal (conversions). One path waits before its goal (its end is projected after the path), the other
ends at once (path and end in one projection): both are counted once, and equal their recomputation."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.rebuild import compare
from models.tables import EnrollmentStep
from models.temporal import EnrollmentTrigger
from tests.helpers import load_synthea_patient, publish
from tests.workflows.fixtures import JourneyHarness

pytestmark = pytest.mark.usefixtures("empty_database")

SPLIT = {
    "key": "analytics-split",
    "version": 1,
    "name": "Split test",
    "reentry": "always",
    "steps": [
        {
            "id": "choose",
            "split": [{"name": "warm", "goto": "warm"}, {"name": "plain", "goto": "plain"}],
        },
        {"id": "warm", "send": {"channel": "sms", "body": "We look forward to seeing you."}},
        {"id": "pause", "wait": {"duration": "PT1H"}, "goto": "booked"},
        {"id": "plain", "end": {"outcome": "declined"}},
        {"id": "booked", "end": {"outcome": "booked"}},
    ],
}


async def test_each_path_s_exposures_and_conversions_to_the_goal(
    journeys: JourneyHarness, api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    patient = await load_synthea_patient(journeys.sessions)
    split = await publish(journeys.sessions, SPLIT)
    async with journeys.make_worker():
        for _ in range(8):
            await journeys.run_to_end(split, patient["id"], EnrollmentTrigger(kind="manual"))
    async with journeys.sessions() as session:
        taken = Counter(
            record.result.removeprefix("path ")
            for record in await session.scalars(select(EnrollmentStep).where(EnrollmentStep.step == "choose"))
        )

    answer = await api.get(
        "/v1/analytics/journeys/analytics-split/ab", params={"step": "choose", "goal": "booked"}
    )
    body = answer.json()

    assert answer.status_code == 200, answer.text
    assert sum(taken.values()) == 8
    rows = {row["variant"]: (row["exposures"], row["conversions"]) for row in body["variants"]}
    # Everyone sent down `warm` reached `booked`; nobody down `plain` did.
    assert rows == {path: (n, n if path == "warm" else 0) for path, n in taken.items()}
    assert body["winner"] is None  # fewer than 30 a path: no winner, whatever the rates
    assert await compare(engine) == []
