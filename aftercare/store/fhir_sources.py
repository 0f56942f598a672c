"""Registered FHIR sources and what has been read from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import FhirNotification, FhirSource, SubscriptionState, SyncCursor


async def save_source(
    session: AsyncSession,
    *,
    key: str,
    base_url: str,
    auth: dict[str, Any],
    watched_types: list[str],
    poll_seconds: int,
    facility: str | None = None,
) -> bool:
    """Register or change a source; True when it is new."""
    statement = insert(FhirSource).values(
        key=key,
        base_url=base_url,
        auth=auth,
        watched_types=watched_types,
        poll_seconds=poll_seconds,
        facility=facility,
    )
    row = await session.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "base_url": statement.excluded.base_url,
                "auth": statement.excluded.auth,
                "watched_types": statement.excluded.watched_types,
                "poll_seconds": statement.excluded.poll_seconds,
                "facility": statement.excluded.facility,
                "updated_at": func.now(),
            },
        ).returning(FhirSource.created_at == FhirSource.updated_at)
    )
    return bool(row.scalar())


async def cursors_of(session: AsyncSession, source_key: str) -> Sequence[SyncCursor]:
    """The source's polling marks, by resource type."""
    rows = await session.scalars(
        select(SyncCursor).where(SyncCursor.source_key == source_key).order_by(SyncCursor.resource_type)
    )
    return rows.all()


async def subscription_states_of(session: AsyncSession, source_key: str) -> Sequence[SubscriptionState]:
    """The source's topic-based subscriptions and their event numbers."""
    rows = await session.scalars(
        select(SubscriptionState)
        .where(SubscriptionState.source_key == source_key)
        .order_by(SubscriptionState.subscription)
    )
    return rows.all()


async def pending_notifications(session: AsyncSession, source_key: str) -> int:
    """Notifications from the source whose work is not done yet."""
    count: int = (
        await session.scalar(
            select(func.count())
            .select_from(FhirNotification)
            .where(FhirNotification.source_key == source_key, FhirNotification.status != "processed")
        )
        or 0
    )
    return count
