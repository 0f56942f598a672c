"""Received subscription notifications whose work (reads, recovery) is handed to workflows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import FhirNotification


async def mark_processed(session: AsyncSession, notification_id: str) -> None:
    """The notification's work is done."""
    await session.execute(
        update(FhirNotification)
        .where(FhirNotification.id == notification_id)
        .values(status="processed", processed_at=func.now(), error=None)
    )


async def park_notification(session: AsyncSession, notification_id: str, reason: str) -> None:
    """The notification's work failed for good: kept with the reason for an operator, not retried."""
    await session.execute(
        update(FhirNotification)
        .where(FhirNotification.id == notification_id, FhirNotification.status == "received")
        .values(status="parked", processed_at=func.now(), error=reason[:2000])
    )


async def unfinished_notifications(
    session: AsyncSession, older_than: datetime, limit: int
) -> Sequence[FhirNotification]:
    """Notifications still waiting for their work (their workflow may never have started)."""
    rows = await session.scalars(
        select(FhirNotification)
        .where(FhirNotification.status == "received", FhirNotification.received_at < older_than)
        .order_by(FhirNotification.received_at)
        .limit(limit)
    )
    return rows.all()
