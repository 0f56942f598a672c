"""ADT messages received: looked up by sender and control id, recorded once, parked ones listed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from models.adt_tables import AdtMessage


async def find_adt_message(
    session: AsyncSession, sending_facility: str, control_id: str
) -> AdtMessage | None:
    """The message already handled under this sender and control id, if any."""
    found: AdtMessage | None = await session.scalar(
        select(AdtMessage).where(
            AdtMessage.sending_facility == sending_facility, AdtMessage.control_id == control_id
        )
    )
    return found


async def record_adt_message(session: AsyncSession, values: dict[str, Any]) -> None:
    """Record a handled message; a retried (parked) one takes its new outcome."""
    statement = insert(AdtMessage).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            constraint="uq_adt_messages_sender_control",
            set_={
                key: statement.excluded[key]
                for key in values
                if key not in ("sending_facility", "control_id")
            },
            where=AdtMessage.ack_code != "AA",
        )
    )


async def parked_adt_messages(session: AsyncSession, limit: int = 100) -> Sequence[AdtMessage]:
    """Messages that got `AE` or `AR`, newest first."""
    rows = await session.scalars(
        select(AdtMessage).where(AdtMessage.ack_code != "AA").order_by(AdtMessage.id.desc()).limit(limit)
    )
    return rows.all()


async def get_adt_message(session: AsyncSession, message_id: int) -> AdtMessage | None:
    """One message by its row id."""
    return await session.get(AdtMessage, message_id)


async def mark_retried(session: AsyncSession, message_id: int) -> None:
    """Note that an operator retried it."""
    await session.execute(update(AdtMessage).where(AdtMessage.id == message_id).values(retried_at=func.now()))
