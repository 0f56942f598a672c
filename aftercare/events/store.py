"""Events and their sessions in the database: create, publish, read with seat counts.

The caller owns the transaction. Every rule that needs the database (an unknown segment, overlapping
sessions in one room) is checked here, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.events.errors import EventConflict, EventInvalid, EventNotFound
from models.event_api import EventIn, EventView, SessionView, Venue
from models.event_tables import Event, EventRegistration, EventSession
from models.segment_tables import Segment


@dataclass(frozen=True)
class SessionCounts:
    """Waiting and offered registrations of a session."""

    waitlisted: int = 0
    offered: int = 0


async def create_event(session: AsyncSession, body: EventIn, *, now: datetime | None = None) -> Event:
    """A new draft event with its sessions; a taken key is a conflict."""
    now = now or datetime.now(UTC)
    if await session.get(Event, body.key) is not None:
        raise EventConflict(f"an event with key {body.key!r} exists")
    for index, sitting in enumerate(body.sessions):
        if sitting.start <= now:
            raise EventInvalid(("body", "sessions", index, "start"), "the session starts in the past")
    _refuse_room_overlaps(body)
    if body.eligibility is not None:
        known = await session.scalar(select(func.count()).where(Segment.key == body.eligibility))
        if not known:
            raise EventInvalid(("body", "eligibility"), f"there is no segment {body.eligibility!r}")
    event = Event(
        key=body.key,
        title=body.title,
        description=body.description,
        kind=body.kind,
        timezone=body.timezone,
        venue=body.venue.model_dump() if body.venue else None,
        languages=list(body.languages),
        eligibility_segment=body.eligibility,
        organiser_team=body.organiser_team,
        status="draft",
        sequence=0,
    )
    session.add(event)
    await session.flush()
    session.add_all(
        EventSession(
            event_key=body.key,
            id=sitting.id,
            start_at=sitting.start,
            end_at=sitting.end,
            room=sitting.room,
            online_url=sitting.online_url,
            capacity=sitting.capacity,
            seats_taken=0,
        )
        for sitting in body.sessions
    )
    await session.flush()
    return event


def _refuse_room_overlaps(body: EventIn) -> None:
    for index, sitting in enumerate(body.sessions):
        for other in body.sessions[:index]:
            if (
                sitting.room is not None
                and sitting.room == other.room
                and sitting.start < other.end
                and other.start < sitting.end
            ):
                raise EventInvalid(
                    ("body", "sessions", index, "room"),
                    f"session {sitting.id!r} overlaps session {other.id!r} in room {sitting.room!r}",
                )


async def get_event(session: AsyncSession, key: str, *, lock: bool = False) -> Event:
    """The event, or `EventNotFound`."""
    statement = select(Event).where(Event.key == key)
    if lock:
        statement = statement.with_for_update()
    event = await session.scalar(statement)
    if event is None:
        raise EventNotFound(f"no event {key!r}")
    return event


async def sessions_of(session: AsyncSession, key: str) -> list[EventSession]:
    """The event's sessions, the earliest first."""
    rows = await session.scalars(
        select(EventSession)
        .where(EventSession.event_key == key)
        .order_by(EventSession.start_at, EventSession.id)
    )
    return list(rows)


async def publish_event(session: AsyncSession, key: str) -> Event:
    """Open a draft event for registration (publishing a published event changes nothing)."""
    event = await get_event(session, key, lock=True)
    if event.status in ("cancelled", "completed"):
        raise EventConflict(f"the event is {event.status}")
    if event.status == "draft":
        event.status = "published"
        event.updated_at = datetime.now(UTC)
    return event


async def event_view(session: AsyncSession, key: str) -> EventView:
    """The event with each session's seats taken, waitlist and offers."""
    event = await get_event(session, key)
    sittings = await sessions_of(session, key)
    counts: dict[str, SessionCounts] = {}
    rows = await session.execute(
        select(EventRegistration.session_id, EventRegistration.status, func.count())
        .where(EventRegistration.event_key == key, EventRegistration.status.in_(("waitlisted", "offered")))
        .group_by(EventRegistration.session_id, EventRegistration.status)
    )
    for session_id, status, count in rows:
        known = counts.get(session_id, SessionCounts())
        counts[session_id] = (
            SessionCounts(count, known.offered)
            if status == "waitlisted"
            else SessionCounts(known.waitlisted, count)
        )
    return EventView(
        key=event.key,
        title=event.title,
        description=event.description,
        kind=event.kind,
        timezone=event.timezone,
        venue=Venue.model_validate(event.venue) if event.venue else None,
        languages=list(event.languages),
        eligibility=event.eligibility_segment,
        organiser_team=event.organiser_team,
        status=event.status,
        sequence=event.sequence,
        sessions=[
            SessionView(
                id=sitting.id,
                start=sitting.start_at,
                end=sitting.end_at,
                room=sitting.room,
                online_url=sitting.online_url,
                capacity=sitting.capacity,
                registered=sitting.seats_taken,
                waitlisted=counts.get(sitting.id, SessionCounts()).waitlisted,
                offered=counts.get(sitting.id, SessionCounts()).offered,
                closed_at=sitting.closed_at,
            )
            for sitting in sittings
        ],
    )
