"""Enrollment projections: a workflow's transitions and step records mirrored into the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.enrollments import record_progress
from models.tables import Enrollment, EnrollmentStep
from models.temporal import ProgressUpdate, StepRecord

pytestmark = pytest.mark.usefixtures("empty_database")

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def enroll(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        session.add(
            Enrollment(
                id="enr-1",
                journey_key="j",
                journey_version=1,
                patient_id="p-1",
                status="running",
                trigger={"kind": "manual"},
                context={},
                exclusive=False,
                once_only=False,
                workflow_id="enrollment-enr-1",
            )
        )


async def project(sessions: async_sessionmaker[AsyncSession], progress: ProgressUpdate) -> bool:
    async with sessions.begin() as session:
        return await record_progress(session, progress)


async def state(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[tuple[str, str | None, str | None, bool] | None, list[tuple[int, str, str, str | None]]]:
    async with sessions() as session:
        enrollment = await session.get(Enrollment, "enr-1")
        steps = await session.scalars(select(EnrollmentStep).order_by(EnrollmentStep.seq))
        row = (
            (enrollment.status, enrollment.current_step, enrollment.outcome, enrollment.ended_at is not None)
            if enrollment is not None
            else None
        )
        return row, [(s.seq, s.step, s.result, s.detail) for s in steps]


@pytest.mark.parametrize("records", [1, 2], ids=["one record", "two records"])
async def test_progress_and_its_records_are_written_once_and_a_terminal_status_ends_the_enrollment(
    sessions: async_sessionmaker[AsyncSession], records: int
) -> None:
    await enroll(sessions)
    moving = ProgressUpdate(
        enrollment_id="enr-1",
        status="running",
        current_step="wait",
        records=[StepRecord(seq=1, step="notify", at=AT, result="sent")],
    )
    assert await project(sessions, moving)
    assert await state(sessions) == (("running", "wait", None, False), [(1, "notify", "sent", None)])

    ending = [StepRecord(seq=n, step=f"s{n}", at=AT, result="skipped", detail="why") for n in (2, 3)]
    completed = ProgressUpdate(
        enrollment_id="enr-1", status="completed", outcome="completed", records=ending[:records]
    )
    assert await project(sessions, completed)
    # A replay of the same transition writes no record twice.
    assert await project(sessions, completed)
    expected = [(1, "notify", "sent", None), *[(r.seq, r.step, "skipped", "why") for r in ending[:records]]]
    assert await state(sessions) == (("completed", None, "completed", True), expected)


@pytest.mark.parametrize("records", [0, 1, 2])
async def test_progress_for_an_enrollment_without_a_row_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], records: int
) -> None:
    progress = ProgressUpdate(
        enrollment_id="enr-1",
        status="completed",
        records=[StepRecord(seq=n, step="notify", at=AT, result="sent") for n in range(records)],
    )
    assert not await project(sessions, progress)
    assert await state(sessions) == (None, [])
