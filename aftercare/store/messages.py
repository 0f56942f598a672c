"""Messages: send intents recorded before the provider is called, then their fate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.constant_insert import constant_insert
from models.tables import Message, table_of


async def find_by_idempotency_key(session: AsyncSession, key: str) -> Message | None:
    """The message recorded for this send, if any."""
    message: Message | None = await session.scalar(select(Message).where(Message.idempotency_key == key))
    return message


_MESSAGES = table_of(Message)
_INSERT_INTENT = (
    insert(_MESSAGES).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(*_MESSAGES.columns)
)
_INTENT = constant_insert(_INSERT_INTENT)
_SENT = constant_insert(_INSERT_INTENT.values(sent_at=func.now()))


async def record_intent(session: AsyncSession, values: dict[str, Any], *, sent_now: bool = False) -> Message:
    """Record a send intent once; a second call with the same idempotency key returns the first row.

    `sent_now` stamps `sent_at` with the database clock (a message already accepted when recorded).
    """
    connection = await session.connection()  # a Core statement: the ORM session's layer adds nothing
    row = (await connection.execute(_SENT if sent_now else _INTENT, values)).first()
    message = Message(**row._mapping) if row is not None else None
    if message is None:
        message = await find_by_idempotency_key(session, values["idempotency_key"])
    assert message is not None
    return message


async def update_message(session: AsyncSession, message_id: str, **values: Any) -> None:
    """Change a message's status, reason or provider details."""
    await session.execute(
        update(Message).where(Message.id == message_id).values(**values, updated_at=func.now())
    )


async def list_messages(
    session: AsyncSession,
    *,
    patient_id: str | None = None,
    enrollment_id: str | None = None,
    journey_key: str | None = None,
    campaign_run_id: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> Sequence[Message]:
    """Messages, newest first, filtered."""
    query = select(Message)
    if patient_id is not None:
        query = query.where(Message.patient_id == patient_id)
    if enrollment_id is not None:
        query = query.where(Message.enrollment_id == enrollment_id)
    if journey_key is not None:
        query = query.where(Message.journey_key == journey_key)
    if campaign_run_id is not None:
        query = query.where(Message.campaign_run_id == campaign_run_id)
    if channel is not None:
        query = query.where(Message.channel == channel)
    if status is not None:
        query = query.where(Message.status == status)
    if before is not None:
        query = query.where(Message.created_at < before)
    rows = await session.scalars(query.order_by(Message.created_at.desc(), Message.id).limit(limit))
    return rows.all()
