"""What providers report about sent messages (status callbacks, email events), applied once each.

A message's status only moves forward: a late `sent` callback never undoes `delivered`, and the first
final outcome (delivered, undelivered, failed) stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Message, MessageEvent
from models.temporal import MessageStatus

STATUS_RANK: dict[str, int] = {
    "pending": 0,
    "sending": 1,
    "queued": 2,
    "sent": 3,
    "printed": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "skipped": 5,
}
_ENGAGEMENT_COLUMNS = {"open": "opened_at", "click": "clicked_at"}


@dataclass(frozen=True)
class ProviderEvent:
    """One thing a provider said about a message; `event_id` is unique per provider."""

    provider: str
    event_id: str
    event: str
    occurred_at: datetime
    status: MessageStatus | None = None
    detail: str | None = None


async def message_for_provider_id(
    session: AsyncSession, provider: str, provider_message_id: str
) -> Message | None:
    """The message a provider knows by this id."""
    message: Message | None = await session.scalar(
        select(Message).where(
            Message.provider == provider, Message.provider_message_id == provider_message_id
        )
    )
    return message


async def apply_provider_event(session: AsyncSession, message_id: str, event: ProviderEvent) -> bool:
    """Record the event and move the message on; False when this event was already applied."""
    recorded = await session.execute(
        insert(MessageEvent)
        .values(
            message_id=message_id,
            provider=event.provider,
            provider_event_id=event.event_id,
            event=event.event,
            detail=event.detail,
            occurred_at=event.occurred_at,
        )
        .on_conflict_do_nothing(constraint="uq_message_events_provider_event")
        .returning(MessageEvent.id)
    )
    if recorded.first() is None:
        return False
    message = await session.get(Message, message_id, with_for_update=True)
    assert message is not None
    changes: dict[str, Any] = {}
    if event.status is not None and STATUS_RANK[event.status] > STATUS_RANK.get(message.status, 0):
        changes["status"] = event.status
        if event.detail:
            changes["reason"] = event.detail
        if event.status == "delivered":
            changes["delivered_at"] = event.occurred_at
    column = _ENGAGEMENT_COLUMNS.get(event.event)
    if column is not None and getattr(message, column) is None:
        changes[column] = event.occurred_at
    for name, value in changes.items():
        setattr(message, name, value)
    if changes:
        message.updated_at = func.now()
    await session.flush()
    return True


async def events_of(session: AsyncSession, message_id: str) -> list[MessageEvent]:
    """A message's provider events, oldest first."""
    rows = await session.scalars(
        select(MessageEvent).where(MessageEvent.message_id == message_id).order_by(MessageEvent.occurred_at)
    )
    return list(rows)
