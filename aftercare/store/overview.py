"""Today's numbers at a glance, for the console's home page: counts only, never patient data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models.tables import Enrollment, Message, ParkedItem, SubscriptionState, SyncCursor, Task

SENT_MESSAGE_STATUSES = ("queued", "sent", "printed", "delivered")
BLOCKED_MESSAGE_STATUS = "skipped"  # a guardrail (consent, suppression, quiet hours, caps) held it back
FAILED_MESSAGE_STATUSES = ("failed", "undelivered")
HEALTHY_SUBSCRIPTION_STATUSES = ("active", "requested")


@dataclass(frozen=True)
class ChannelCounts:
    """Messages of one channel since a moment, by how they ended."""

    channel: str
    sent: int = 0
    blocked: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Overview:
    """The home page's counts."""

    active_enrollments: int
    open_tasks: int
    failing_sources: int
    parked_items: int
    messages: list[ChannelCounts] = field(default_factory=list)


@dataclass(frozen=True)
class ProviderCounts:
    """Messages one provider took for a channel since a moment: sent (or further), failed, and still
    waiting to go (`pending` or `sending`)."""

    channel: str
    provider: str
    sent: int = 0
    failed: int = 0
    waiting: int = 0


def _by_fate(*keys: InstrumentedAttribute[Any]) -> Select[Any]:
    status = Message.status
    return select(
        *keys,
        func.count().filter(status.in_(SENT_MESSAGE_STATUSES)),
        func.count().filter(status == BLOCKED_MESSAGE_STATUS),
        func.count().filter(status.in_(FAILED_MESSAGE_STATUSES)),
        func.count().filter(status.in_(("pending", "sending"))),
    ).group_by(*keys)


async def message_counts(session: AsyncSession, since: datetime) -> list[ChannelCounts]:
    """Messages created since `since`, per channel: sent (or further), blocked, failed."""
    rows = await session.execute(
        _by_fate(Message.channel).where(Message.created_at >= since).order_by(Message.channel)
    )
    return [ChannelCounts(channel, sent, blocked, failed) for channel, sent, blocked, failed, _ in rows]


async def provider_counts(session: AsyncSession, since: datetime) -> list[ProviderCounts]:
    """Messages created since `since` that went to a provider, per channel and provider."""
    rows = await session.execute(
        _by_fate(Message.channel, Message.provider)
        .where(Message.created_at >= since, Message.provider.is_not(None))
        .order_by(Message.channel, Message.provider)
    )
    return [
        ProviderCounts(channel, provider, sent, failed, waiting)
        for channel, provider, sent, _, failed, waiting in rows
    ]


async def failing_sources(session: AsyncSession) -> int:
    """FHIR sources whose last poll failed or with a subscription that is not active."""
    polling = select(SyncCursor.source_key).where(SyncCursor.last_error.is_not(None))
    subscribed = select(SubscriptionState.source_key).where(
        or_(
            SubscriptionState.status.is_(None),
            SubscriptionState.status.not_in(HEALTHY_SUBSCRIPTION_STATUSES),
        )
    )
    keys = polling.union(subscribed).subquery()
    return int(await session.scalar(select(func.count()).select_from(keys)) or 0)


async def overview(session: AsyncSession, since: datetime) -> Overview:
    """Every count of the home page."""
    enrollments = await session.scalar(
        select(func.count()).select_from(Enrollment).where(Enrollment.status == "running")
    )
    tasks = await session.scalar(select(func.count()).select_from(Task).where(Task.status == "open"))
    parked = await session.scalar(select(func.count()).select_from(ParkedItem))
    return Overview(
        active_enrollments=int(enrollments or 0),
        open_tasks=int(tasks or 0),
        failing_sources=await failing_sources(session),
        parked_items=int(parked or 0),
        messages=await message_counts(session, since),
    )
