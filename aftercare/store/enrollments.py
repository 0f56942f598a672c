"""Enrollment projections: the ledger rows that enforce re-entry rules, and the mirror of each
enrollment workflow's progress."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, DateTime, Integer, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.constant_insert import constant_insert
from models.tables import Enrollment, EnrollmentStep, table_of
from models.temporal import TERMINAL_ENROLLMENT_STATUSES, ProgressUpdate

_INSERT_ENROLLMENT = constant_insert(
    insert(table_of(Enrollment)).on_conflict_do_nothing().returning(table_of(Enrollment).c.id)
)
_INSERT_STEPS = constant_insert(insert(table_of(EnrollmentStep)).on_conflict_do_nothing())
_ENROLLMENTS = table_of(Enrollment)
_PROGRESS = (
    update(_ENROLLMENTS)
    .where(_ENROLLMENTS.c.id == bindparam("p_id"))
    .values(
        status=bindparam("p_status"),
        current_step=bindparam("p_step"),
        outcome=bindparam("p_outcome"),
        paused=bindparam("p_paused"),
        updated_at=func.now(),
    )
)
_ENDED = _PROGRESS.values(ended_at=func.now())
# The projection's update and one step record (a send's, usually) in one round trip: the row count of the
# update, and the record written only when the enrollment has a row (a replayed record is a no-op).
_PROGRESS_AND_STEP = """
WITH moved AS (
    UPDATE enrollments SET status = :p_status, current_step = :p_step, outcome = :p_outcome,
        paused = :p_paused, updated_at = now(){ended}
    WHERE id = :p_id
    RETURNING id
), recorded AS (
    INSERT INTO enrollment_steps (enrollment_id, seq, step, at, result, detail)
    SELECT id, :seq, :step, :at, :result, CAST(:detail AS text) FROM moved
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM moved
"""
_STEP_TYPES = (
    bindparam("p_paused", type_=Boolean),
    bindparam("seq", type_=Integer),
    bindparam("at", type_=DateTime(timezone=True)),
)
_MOVED_AND_RECORDED = text(_PROGRESS_AND_STEP.format(ended="")).bindparams(*_STEP_TYPES)
_ENDED_AND_RECORDED = text(_PROGRESS_AND_STEP.format(ended=", ended_at = now()")).bindparams(*_STEP_TYPES)


async def insert_enrollment(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless a unique rule (running, once-only, same trigger) forbids it; True when inserted."""
    connection = await session.connection()
    inserted = await connection.scalar(_INSERT_ENROLLMENT, {"status": "running", **values})
    return inserted is not None


async def insert_enrollments(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many at once; the ids of the rows no unique rule refused."""
    if not rows:
        return set()
    return {row[0] for row in await session.execute(_INSERT_ENROLLMENT, rows)}


async def blocking_enrollment(
    session: AsyncSession, journey_key: str, patient_id: str, trigger_key: str | None, *, once_only: bool
) -> Enrollment | None:
    """The enrollment that stopped an insert: same trigger, a running exclusive one, or any (once-only)."""
    conditions: list[ColumnElement[bool]] = [(Enrollment.status == "running") & Enrollment.exclusive]
    if once_only:
        conditions.append(Enrollment.once_only.is_(True))
    if trigger_key is not None:
        conditions.append(Enrollment.trigger_key == trigger_key)
    query = (
        select(Enrollment)
        .where(Enrollment.journey_key == journey_key, Enrollment.patient_id == patient_id, or_(*conditions))
        .order_by(Enrollment.started_at.desc())
        .limit(1)
    )
    blocking: Enrollment | None = await session.scalar(query)
    return blocking


async def get_enrollment(session: AsyncSession, enrollment_id: str) -> Enrollment | None:
    """One enrollment's projection."""
    return await session.get(Enrollment, enrollment_id)


async def enrollment_history(session: AsyncSession, enrollment_id: str) -> Sequence[EnrollmentStep]:
    """Executed steps in order."""
    rows = await session.scalars(
        select(EnrollmentStep)
        .where(EnrollmentStep.enrollment_id == enrollment_id)
        .order_by(EnrollmentStep.seq)
    )
    return rows.all()


async def record_progress(session: AsyncSession, progress: ProgressUpdate) -> bool:
    """Mirror a workflow transition; replays of the same step record are no-ops. False, with nothing
    written, when the enrollment has no row."""
    connection = await session.connection()  # Core statements: the ORM session's layer adds nothing
    ended = progress.status in TERMINAL_ENROLLMENT_STATUSES
    values = {
        "p_id": progress.enrollment_id,
        "p_status": progress.status,
        "p_step": progress.current_step,
        "p_outcome": progress.outcome,
        "p_paused": progress.paused,
    }
    if len(progress.records) == 1:
        [record] = progress.records
        step = {"seq": record.seq, "step": record.step, "at": record.at, "result": record.result}
        statement = _ENDED_AND_RECORDED if ended else _MOVED_AND_RECORDED
        return bool(await connection.scalar(statement, values | step | {"detail": record.detail}))
    moved = await connection.execute(_ENDED if ended else _PROGRESS, values)
    if not moved.rowcount:
        return False
    if progress.records:
        steps = [
            {
                "enrollment_id": progress.enrollment_id,
                "seq": record.seq,
                "step": record.step,
                "at": record.at,
                "result": record.result,
                "detail": record.detail,
            }
            for record in progress.records
        ]
        await connection.execute(_INSERT_STEPS, steps)
    return True


async def close_enrollment(
    session: AsyncSession, enrollment_id: str, status: str, outcome: str | None
) -> bool:
    """Reconcile a projection with a workflow that ended without reporting (terminated, timed out);
    True when the row was still `running`."""
    closed = await session.scalar(
        update(Enrollment)
        .where(Enrollment.id == enrollment_id, Enrollment.status == "running")
        .values(status=status, outcome=outcome, ended_at=func.now(), updated_at=func.now())
        .returning(Enrollment.id)
    )
    return closed is not None


async def running_enrollments_of(session: AsyncSession, patient_id: str) -> Sequence[Enrollment]:
    """A patient's running enrollments."""
    rows = await session.scalars(
        select(Enrollment).where(Enrollment.patient_id == patient_id, Enrollment.status == "running")
    )
    return rows.all()


async def running_enrollments_of_many(
    session: AsyncSession, patient_ids: Iterable[str]
) -> Sequence[Enrollment]:
    """The running enrollments of any of these patients."""
    wanted = list(set(patient_ids))
    if not wanted:
        return []
    rows = await session.scalars(
        select(Enrollment).where(Enrollment.patient_id.in_(wanted), Enrollment.status == "running")
    )
    return rows.all()


async def enrollments_of(session: AsyncSession, patient_id: str, limit: int = 50) -> Sequence[Enrollment]:
    """A patient's enrollments, newest first."""
    rows = await session.scalars(
        select(Enrollment)
        .where(Enrollment.patient_id == patient_id)
        .order_by(Enrollment.started_at.desc())
        .limit(limit)
    )
    return rows.all()


async def list_enrollments(
    session: AsyncSession,
    *,
    journey_key: str | None = None,
    patient_id: str | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> Sequence[Enrollment]:
    """Enrollments, newest first, filtered."""
    query = select(Enrollment)
    if journey_key is not None:
        query = query.where(Enrollment.journey_key == journey_key)
    if patient_id is not None:
        query = query.where(Enrollment.patient_id == patient_id)
    if status is not None:
        query = query.where(Enrollment.status == status)
    if before is not None:
        query = query.where(Enrollment.started_at < before)
    rows = await session.scalars(query.order_by(Enrollment.started_at.desc(), Enrollment.id).limit(limit))
    return rows.all()


async def never_progressed(session: AsyncSession, older_than: datetime, limit: int) -> Sequence[Enrollment]:
    """Running enrollments started before `older_than` with no step recorded: their workflow may never
    have started (a crash between allocation and start)."""
    steps = select(EnrollmentStep.enrollment_id).where(EnrollmentStep.enrollment_id == Enrollment.id)
    rows = await session.scalars(
        select(Enrollment)
        .where(Enrollment.status == "running", Enrollment.started_at < older_than, ~steps.exists())
        .order_by(Enrollment.started_at)
        .limit(limit)
    )
    return rows.all()
