"""Suppressed addresses: a phone number or email address that must not be messaged, whoever it belongs
to (it bounced, was reported as spam, is not a mobile number, or texted STOP)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Suppression


async def suppress(session: AsyncSession, channel: str, address: str, reason: str, source: str) -> None:
    """Suppress an address; an existing suppression keeps its first reason."""
    await session.execute(
        insert(Suppression)
        .values(channel=channel, address=normalise_address(channel, address), reason=reason, source=source)
        .on_conflict_do_nothing(index_elements=["channel", "address"])
    )


async def lift_suppression(
    session: AsyncSession, channel: str, address: str, reasons: Sequence[str] | None = None
) -> bool:
    """Remove a suppression (only one for these reasons, when given); True when one was removed."""
    statement = delete(Suppression).where(
        Suppression.channel == channel, Suppression.address == normalise_address(channel, address)
    )
    if reasons is not None:
        statement = statement.where(Suppression.reason.in_(reasons))
    removed = await session.execute(statement.returning(Suppression.address))
    return removed.first() is not None


async def find_suppression(session: AsyncSession, channel: str, address: str) -> Suppression | None:
    """The suppression of this address, if there is one."""
    found: Suppression | None = await session.get(Suppression, (channel, normalise_address(channel, address)))
    return found


async def list_suppressions(
    session: AsyncSession, channel: str | None = None, limit: int = 100
) -> Sequence[Suppression]:
    """Suppressions, newest first."""
    query = select(Suppression)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    rows = await session.scalars(query.order_by(Suppression.created_at.desc()).limit(limit))
    return rows.all()


def normalise_address(channel: str, address: str) -> str:
    """Email addresses compare without case; phone numbers are already E.164."""
    return address.strip().lower() if channel == "email" else address.strip()
