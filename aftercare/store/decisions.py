"""The decision log: what the guardrails decided about each attempt of each send, and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import SendDecision, table_of

# A Core insert with always the same columns: compiled once, and no unit of work around it.
_INSERT_DECISION = insert(table_of(SendDecision))


async def record_decision(
    session: AsyncSession,
    *,
    patient_id: str,
    idempotency_key: str,
    purpose: str,
    decision: str,
    rule: str,
    reason: str | None = None,
    channel: str | None = None,
    message_id: str | None = None,
    enrollment_id: str | None = None,
    journey_key: str | None = None,
    step_id: str | None = None,
    defer_until: datetime | None = None,
) -> None:
    """Append one decision (in the transaction that records the message, when there is one)."""
    await (await session.connection()).execute(
        _INSERT_DECISION,
        {
            "patient_id": patient_id,
            "idempotency_key": idempotency_key,
            "purpose": purpose,
            "decision": decision,
            "rule": rule,
            "reason": reason,
            "channel": channel,
            "message_id": message_id,
            "enrollment_id": enrollment_id,
            "journey_key": journey_key,
            "step_id": step_id,
            "defer_until": defer_until,
        },
    )


async def list_decisions(
    session: AsyncSession, patient_ids: Sequence[str], *, decision: str | None = None, limit: int = 100
) -> Sequence[SendDecision]:
    """Decisions about these patient records, newest first."""
    query = select(SendDecision).where(SendDecision.patient_id.in_(patient_ids))
    if decision is not None:
        query = query.where(SendDecision.decision == decision)
    rows = await session.scalars(
        query.order_by(SendDecision.created_at.desc(), SendDecision.id.desc()).limit(limit)
    )
    return rows.all()
