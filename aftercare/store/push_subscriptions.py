"""Web Push subscriptions: one per browser or device a patient allowed notifications on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import PushSubscription


async def save_subscription(
    session: AsyncSession, patient_id: str, endpoint: str, p256dh: str, auth: str, device: str | None
) -> PushSubscription:
    """Store a subscription; the same endpoint again replaces its keys (and owner: a shared device)."""
    statement = insert(PushSubscription).values(
        id=str(uuid.uuid4()),
        patient_id=patient_id,
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        device=device,
    )
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["endpoint"],
                set_={
                    "patient_id": statement.excluded.patient_id,
                    "p256dh": statement.excluded.p256dh,
                    "auth": statement.excluded.auth,
                    "device": statement.excluded.device,
                },
            ).returning(*PushSubscription.__table__.columns)
        )
    ).one()
    return PushSubscription(**row._mapping)


async def subscriptions_of(session: AsyncSession, patient_id: str) -> Sequence[PushSubscription]:
    """The patient's subscriptions, oldest first."""
    rows = await session.scalars(
        select(PushSubscription)
        .where(PushSubscription.patient_id == patient_id)
        .order_by(PushSubscription.created_at, PushSubscription.id)
    )
    return rows.all()


async def count_subscriptions(session: AsyncSession, patient_id: str) -> int:
    """How many devices the patient can be reached on."""
    count: int = (
        await session.scalar(
            select(func.count())
            .select_from(PushSubscription)
            .where(PushSubscription.patient_id == patient_id)
        )
        or 0
    )
    return count


async def delete_subscription(
    session: AsyncSession, subscription_id: str, patient_id: str | None = None
) -> bool:
    """Remove a subscription (of that patient, when given); True when one was removed."""
    statement = delete(PushSubscription).where(PushSubscription.id == subscription_id)
    if patient_id is not None:
        statement = statement.where(PushSubscription.patient_id == patient_id)
    removed = await session.execute(statement.returning(PushSubscription.id))
    return removed.first() is not None
