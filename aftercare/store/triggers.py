"""Trigger events received from clinical systems, and input parked with the reason it was not used."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import ParkedItem, TriggerEvent


async def claim_trigger_event(session: AsyncSession, values: dict[str, Any]) -> TriggerEvent | None:
    """Record an event; returns the earlier row when this id was processed before, None when it is new."""
    inserted = await session.scalar(
        insert(TriggerEvent).values(**values).on_conflict_do_nothing().returning(TriggerEvent.id)
    )
    if inserted is not None:
        return None
    return await session.get(TriggerEvent, values["id"])


async def claim_trigger_events(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, TriggerEvent]:
    """`claim_trigger_event` for many (distinct ids), in two statements: the earlier rows of the ids
    processed before, by id; the ids not in it are new."""
    if not rows:
        return {}
    inserted = set(
        await session.scalars(insert(TriggerEvent).on_conflict_do_nothing().returning(TriggerEvent.id), rows)
    )
    repeated = [row["id"] for row in rows if row["id"] not in inserted]
    if not repeated:
        return {}
    earlier = await session.scalars(select(TriggerEvent).where(TriggerEvent.id.in_(repeated)))
    return {row.id: row for row in earlier}


async def finish_trigger_events(
    session: AsyncSession, outcomes: dict[str, tuple[list[str], list[str]]]
) -> None:
    """`finish_trigger_event` for many: the events that reached nothing in one statement, the others in
    one statement each (event id → enrollments delivered to, enrollments started)."""
    quiet = [event_id for event_id, (delivered, started) in outcomes.items() if not delivered and not started]
    if quiet:
        await session.execute(
            update(TriggerEvent)
            .where(TriggerEvent.id.in_(quiet))
            .values(delivered_to=[], started=[], processed_at=func.now())
        )
    for event_id, (delivered, started) in outcomes.items():
        if delivered or started:
            await finish_trigger_event(session, event_id, delivered, started)


async def finish_trigger_event(
    session: AsyncSession, event_id: str, delivered_to: list[str], started: list[str]
) -> None:
    """Store what an event did, so a repeat answers the same."""
    await session.execute(
        update(TriggerEvent)
        .where(TriggerEvent.id == event_id)
        .values(delivered_to=delivered_to, started=started, processed_at=func.now())
    )


async def park(session: AsyncSession, source: str, reason: str, reference: str | None = None) -> None:
    """Keep input that could not be used, with why."""
    session.add(ParkedItem(source=source, reason=reason, reference=reference))


async def parked_items(session: AsyncSession, limit: int = 100) -> Sequence[ParkedItem]:
    """The latest parked items, newest first."""
    rows = await session.scalars(select(ParkedItem).order_by(ParkedItem.id.desc()).limit(limit))
    return rows.all()


EVENT_TRIGGER_SOURCE = "event-trigger"
EVENT_REFERENCE = "event "  # a parked event's reference: `event <id>`


async def parked_event(session: AsyncSession, item_id: int) -> TriggerEvent | None:
    """The kept event a parked `event-trigger` item stands for, if the item is one."""
    item = await session.get(ParkedItem, item_id)
    if (
        item is None
        or item.source != EVENT_TRIGGER_SOURCE
        or not (item.reference or "").startswith(EVENT_REFERENCE)
    ):
        return None
    found: TriggerEvent | None = await session.get(
        TriggerEvent, (item.reference or "")[len(EVENT_REFERENCE) :]
    )
    return found


async def forget_parked(session: AsyncSession, item_id: int) -> None:
    """Remove a parked item whose input has since been used."""
    await session.execute(delete(ParkedItem).where(ParkedItem.id == item_id))
