"""How many enrollments of a journey sit at or have passed each step, and live counts per journey: the
console's journey pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Enrollment, EnrollmentStep


@dataclass(frozen=True)
class StepCount:
    """Enrollments waiting at a step now (`at`) and enrollments that have run it (`passed`)."""

    at: int = 0
    passed: int = 0


@dataclass(frozen=True)
class JourneyCount:
    """A journey's running and all-time enrollments."""

    running: int = 0
    total: int = 0


async def step_counts(session: AsyncSession, journey_key: str) -> dict[str, StepCount]:
    """Per step id of the journey (any version)."""
    waiting = await session.execute(
        select(Enrollment.current_step, func.count())
        .where(
            Enrollment.journey_key == journey_key,
            Enrollment.status == "running",
            Enrollment.current_step.is_not(None),
        )
        .group_by(Enrollment.current_step)
    )
    passed = await session.execute(
        select(EnrollmentStep.step, func.count(func.distinct(EnrollmentStep.enrollment_id)))
        .join(Enrollment, Enrollment.id == EnrollmentStep.enrollment_id)
        .where(Enrollment.journey_key == journey_key)
        .group_by(EnrollmentStep.step)
    )
    at = {str(step): int(count) for step, count in waiting}
    done = {str(step): int(count) for step, count in passed}
    return {step: StepCount(at.get(step, 0), done.get(step, 0)) for step in at.keys() | done.keys()}


async def journey_counts(session: AsyncSession) -> dict[str, JourneyCount]:
    """Per journey key."""
    rows = await session.execute(
        select(
            Enrollment.journey_key,
            func.count().filter(Enrollment.status == "running"),
            func.count(),
        ).group_by(Enrollment.journey_key)
    )
    return {key: JourneyCount(int(running), int(total)) for key, running, total in rows}
