"""What journeys' `fetch` steps read, kept per enrollment, step and visit (outside the workflow history)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import EnrollmentFetch


async def record_fetch(
    session: AsyncSession,
    *,
    enrollment_id: str,
    step_id: str,
    visit: int,
    name: str,
    query: str,
    resources: list[dict[str, Any]],
    total: int | None,
) -> None:
    """Keep a step visit's results; a retried visit replaces what an interrupted attempt kept."""
    statement = insert(EnrollmentFetch).values(
        enrollment_id=enrollment_id,
        step_id=step_id,
        visit=visit,
        name=name,
        query=query,
        resources=resources,
        total=total,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["enrollment_id", "step_id", "visit"],
            set_={
                "resources": statement.excluded.resources,
                "total": statement.excluded.total,
                "query": statement.excluded.query,
            },
        )
    )


async def fetched_of(session: AsyncSession, enrollment_id: str) -> dict[str, list[dict[str, Any]]]:
    """The enrollment's fetched resources by name: each name's newest fetch."""
    rows = await session.execute(
        select(EnrollmentFetch.name, EnrollmentFetch.resources)
        .where(EnrollmentFetch.enrollment_id == enrollment_id)
        .distinct(EnrollmentFetch.name)
        .order_by(EnrollmentFetch.name, EnrollmentFetch.fetched_at.desc(), EnrollmentFetch.visit.desc())
    )
    return {name: list(resources) for name, resources in rows}
