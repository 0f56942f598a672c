"""Registrations: seats, the waitlist, offers, check-in and attendance.

Every change to a session's seats takes that session's row lock (`FOR UPDATE`) first, so registrations,
cancellations and offers for one session are serialised by PostgreSQL; the `seats_within_capacity`
constraint backs it up. Each function returns the patient events the change causes (`Notice`); the
caller delivers them after its transaction commits, never inside it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.events.errors import EventConflict, EventInvalid, EventNotFound, NotEligible
from aftercare.events.store import get_event
from models.event_api import EventChange, RegistrationIn, SessionChange
from models.event_tables import SEAT_HOLDING, EventRegistration, EventSession
from models.segment_tables import SegmentMembership
from models.tables import Patient

DEFAULT_OFFER_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Notice:
    """A patient event to deliver once the change is committed (`event.registered`, ...)."""

    type: str
    patient_id: str
    registration_id: str
    data: dict[str, Any]
    id: str


@dataclass(frozen=True)
class Offer:
    """A seat offered to a waitlisted registration, until `expires_at`; `number` counts its offers."""

    registration_id: str
    number: int
    expires_at: datetime


@dataclass
class Change:
    """What one operation did: the registration it acted on, the events to deliver, the offers to
    watch (a workflow each)."""

    registration: EventRegistration
    notices: list[Notice] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)


def notice(
    registration: EventRegistration,
    event_type: str,
    *,
    change: int | None = None,
    sitting: EventSession | None = None,
    **extra: Any,
) -> Notice:
    """The patient event of a registration's new status (or, with `change`, of the event's change);
    with the session, its `start` and `end`, which journeys time their reminders by."""
    data = {
        "event_key": registration.event_key,
        "session_id": registration.session_id,
        "registration_id": registration.id,
        "status": registration.status,
        **extra,
    }
    if sitting is not None:
        data |= {"start": sitting.start_at.isoformat(), "end": sitting.end_at.isoformat()}
    return Notice(
        type=event_type,
        patient_id=registration.patient_id,
        registration_id=registration.id,
        data=data,
        id=f"{event_type}:{registration.id}:{registration.offers if change is None else f'v{change}'}",
    )


async def _locked_session(session: AsyncSession, event_key: str, session_id: str) -> EventSession:
    sitting = await session.scalar(
        select(EventSession)
        .where(EventSession.event_key == event_key, EventSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if sitting is None:
        raise EventNotFound(f"event {event_key!r} has no session {session_id!r}")
    return sitting


async def register(
    session: AsyncSession, event_key: str, body: RegistrationIn, *, now: datetime | None = None
) -> Change:
    """A seat when one is free, else a place at the end of the waitlist. The same patient twice for one
    session is a conflict."""
    now = now or datetime.now(UTC)
    event = await get_event(session, event_key)
    if event.status != "published":
        raise EventConflict(f"the event is {event.status}: registrations are closed")
    if await session.get(Patient, body.patient_id) is None:
        raise EventNotFound(f"no patient {body.patient_id!r}")
    if event.eligibility_segment is not None:
        member = await session.scalar(
            select(func.count()).where(
                SegmentMembership.segment_key == event.eligibility_segment,
                SegmentMembership.patient_id == body.patient_id,
                SegmentMembership.exited_at.is_(None),
            )
        )
        if not member:
            raise NotEligible(f"the patient is not in the event's segment {event.eligibility_segment!r}")
    sitting = await _locked_session(session, event_key, body.session_id)
    if sitting.closed_at is not None or sitting.start_at <= now:
        raise EventConflict(f"session {sitting.id!r} has started or closed: registrations are closed")
    taken = await session.scalar(
        select(EventRegistration.id).where(
            EventRegistration.event_key == event_key,
            EventRegistration.session_id == body.session_id,
            EventRegistration.patient_id == body.patient_id,
            EventRegistration.status != "cancelled",
        )
    )
    if taken is not None:
        raise EventConflict(f"the patient is already registered for session {body.session_id!r} ({taken})")
    seats = 1 + body.companions
    queue_empty = not await _waiting(session, event_key, body.session_id)
    seated = queue_empty and sitting.seats_taken + seats <= sitting.capacity
    registration = EventRegistration(
        id=f"reg_{uuid.uuid4().hex}",
        event_key=event_key,
        session_id=body.session_id,
        patient_id=body.patient_id,
        companions=body.companions,
        source=body.source,
        status="registered" if seated else "waitlisted",
        offers=0,
        created_at=now,
        updated_at=now,
    )
    if seated:
        sitting.seats_taken += seats
    session.add(registration)
    await session.flush()
    kind = "event.registered" if seated else "event.waitlisted"
    return Change(registration, [notice(registration, kind, sitting=sitting)])


async def _waiting(session: AsyncSession, event_key: str, session_id: str) -> bool:
    """Whether anyone waits for the session (a newcomer never jumps the queue)."""
    first = await session.scalar(
        select(EventRegistration.id)
        .where(
            EventRegistration.event_key == event_key,
            EventRegistration.session_id == session_id,
            EventRegistration.status == "waitlisted",
        )
        .limit(1)
    )
    return first is not None


async def get_registration(
    session: AsyncSession, event_key: str, registration_id: str, *, lock: bool = False
) -> EventRegistration:
    """A registration of the event, or `EventNotFound`."""
    statement = select(EventRegistration).where(
        EventRegistration.id == registration_id, EventRegistration.event_key == event_key
    )
    if lock:
        # Re-read under the lock: the row may have changed since this session first loaded it.
        statement = statement.with_for_update().execution_options(populate_existing=True)
    registration = await session.scalar(statement)
    if registration is None:
        raise EventNotFound(f"event {event_key!r} has no registration {registration_id!r}")
    return registration


async def list_registrations(
    session: AsyncSession, event_key: str, *, session_id: str | None = None, status: str | None = None
) -> list[EventRegistration]:
    """The event's registrations in the order they were made."""
    statement = select(EventRegistration).where(EventRegistration.event_key == event_key)
    if session_id is not None:
        statement = statement.where(EventRegistration.session_id == session_id)
    if status is not None:
        statement = statement.where(EventRegistration.status == status)
    return list(await session.scalars(statement.order_by(EventRegistration.seq)))


async def offer_free_seats(
    session: AsyncSession, sitting: EventSession, *, now: datetime, ttl: timedelta = DEFAULT_OFFER_TTL
) -> tuple[list[Notice], list[Offer]]:
    """Offer free seats to the waitlist in order; the session row must be locked by the caller. A group
    that does not fit waits (nobody jumps the queue)."""
    notices: list[Notice] = []
    offers: list[Offer] = []
    if sitting.closed_at is not None or sitting.start_at <= now:
        return notices, offers
    waiting = await session.scalars(
        select(EventRegistration)
        .where(
            EventRegistration.event_key == sitting.event_key,
            EventRegistration.session_id == sitting.id,
            EventRegistration.status == "waitlisted",
        )
        .order_by(EventRegistration.seq)
        .with_for_update()
    )
    for registration in waiting:
        if sitting.seats_taken + registration.seats > sitting.capacity:
            break
        sitting.seats_taken += registration.seats
        registration.status = "offered"
        registration.offers += 1
        registration.offer_expires_at = min(now + ttl, sitting.start_at)
        registration.updated_at = now
        notices.append(
            notice(
                registration,
                "event.offered",
                sitting=sitting,
                expires_at=registration.offer_expires_at.isoformat(),
            )
        )
        offers.append(Offer(registration.id, registration.offers, registration.offer_expires_at))
    await session.flush()
    return notices, offers


async def cancel_registration(
    session: AsyncSession,
    event_key: str,
    registration_id: str,
    *,
    reason: str = "cancelled",
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_OFFER_TTL,
) -> Change:
    """Cancel; a freed seat is offered to the next on the waitlist. Cancelling twice changes nothing."""
    now = now or datetime.now(UTC)
    found = await get_registration(session, event_key, registration_id)
    sitting = await _locked_session(session, event_key, found.session_id)
    registration = await get_registration(session, event_key, registration_id, lock=True)
    if registration.status == "cancelled":
        return Change(registration)
    if registration.status in ("attended", "no_show"):
        raise EventConflict(f"the registration is {registration.status}: the session is over")
    return await _release(session, sitting, registration, reason, now=now, ttl=ttl)


async def _release(
    session: AsyncSession,
    sitting: EventSession,
    registration: EventRegistration,
    reason: str,
    *,
    now: datetime,
    ttl: timedelta,
) -> Change:
    """Cancel a registration whose session row is locked; a seat it held goes to the waitlist."""
    held = registration.status in SEAT_HOLDING
    registration.status = "cancelled"
    registration.cancel_reason = reason
    registration.offer_expires_at = None
    registration.updated_at = now
    change = Change(registration, [notice(registration, "event.cancelled", sitting=sitting, reason=reason)])
    if held:
        sitting.seats_taken -= registration.seats
        notices, offers = await offer_free_seats(session, sitting, now=now, ttl=ttl)
        change.notices += notices
        change.offers += offers
    await session.flush()
    return change


async def accept_offer(
    session: AsyncSession, event_key: str, registration_id: str, *, now: datetime | None = None
) -> Change:
    """An offered seat becomes the patient's (accepting twice changes nothing)."""
    now = now or datetime.now(UTC)
    registration = await get_registration(session, event_key, registration_id, lock=True)
    if registration.status == "registered":
        return Change(registration)
    if registration.status != "offered":
        raise EventConflict(f"the registration is {registration.status}, not offered")
    registration.status = "registered"
    registration.offer_expires_at = None
    registration.updated_at = now
    sitting = await session.get(EventSession, (registration.event_key, registration.session_id))
    return Change(
        registration, [notice(registration, "event.registered", sitting=sitting, from_waitlist=True)]
    )


async def expire_offer(
    session: AsyncSession,
    event_key: str,
    registration_id: str,
    number: int,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_OFFER_TTL,
) -> Change | None:
    """The offer `number` lapses unless it was accepted, cancelled or superseded: the seat moves on.
    Returns None when there was nothing to expire, so a repeat never expires twice."""
    now = now or datetime.now(UTC)
    found = await get_registration(session, event_key, registration_id)
    sitting = await _locked_session(session, event_key, found.session_id)
    registration = await get_registration(session, event_key, registration_id, lock=True)
    if registration.status != "offered" or registration.offers != number:
        return None
    return await _release(session, sitting, registration, "offer_expired", now=now, ttl=ttl)


async def check_in(
    session: AsyncSession, event_key: str, registration_id: str, *, now: datetime | None = None
) -> Change:
    """Mark attendance; checking in twice changes nothing."""
    now = now or datetime.now(UTC)
    registration = await get_registration(session, event_key, registration_id, lock=True)
    if registration.status == "attended":
        return Change(registration)
    if registration.status not in ("registered", "offered", "no_show"):
        raise EventConflict(f"the registration is {registration.status}: there is no seat to check in to")
    registration.status = "attended"
    registration.checked_in_at = now
    registration.offer_expires_at = None
    registration.updated_at = now
    return Change(registration, [notice(registration, "event.checked_in")])


async def close_session(
    session: AsyncSession, event_key: str, session_id: str, *, now: datetime | None = None
) -> tuple[EventSession, int, list[Notice]]:
    """Close a session with attendance: every registered or offered patient who did not check in is a
    no_show; the waitlist is cancelled. Closing twice changes nothing."""
    now = now or datetime.now(UTC)
    # the event's row lock first (as cancelling the event takes it): the last close completes it
    event = await get_event(session, event_key, lock=True)
    sitting = await _locked_session(session, event_key, session_id)
    if sitting.closed_at is not None:
        return sitting, 0, []
    sitting.closed_at = now
    notices: list[Notice] = []
    rows = await session.scalars(
        select(EventRegistration)
        .where(
            EventRegistration.event_key == event_key,
            EventRegistration.session_id == session_id,
            EventRegistration.status.in_(("registered", "offered", "waitlisted")),
        )
        .order_by(EventRegistration.seq)
        .with_for_update()
    )
    for registration in rows:
        registration.updated_at = now
        registration.offer_expires_at = None
        if registration.status == "waitlisted":
            registration.status = "cancelled"
            registration.cancel_reason = "session_closed"
            notices.append(notice(registration, "event.cancelled", sitting=sitting, reason="session_closed"))
        else:
            registration.status = "no_show"
            notices.append(notice(registration, "event.no_show", sitting=sitting))
    attended = await session.scalar(
        select(func.count()).where(
            EventRegistration.event_key == event_key,
            EventRegistration.session_id == session_id,
            EventRegistration.status == "attended",
        )
    )
    await session.flush()
    open_sessions = await session.scalar(
        select(func.count()).where(EventSession.event_key == event_key, EventSession.closed_at.is_(None))
    )
    if event.status == "published" and not open_sessions:  # the last session closed: completed
        event.status = "completed"
        event.updated_at = now
    return sitting, int(attended or 0), notices


async def cancel_event(session: AsyncSession, event_key: str, *, now: datetime | None = None) -> list[Notice]:
    """Cancel the event and every live registration (the invite's SEQUENCE is bumped)."""
    now = now or datetime.now(UTC)
    event = await get_event(session, event_key, lock=True)
    if event.status == "cancelled":
        return []
    event.status = "cancelled"
    event.sequence += 1
    event.updated_at = now
    await session.execute(
        update(EventSession).where(EventSession.event_key == event_key).values(seats_taken=0)
    )
    rows = await session.scalars(
        select(EventRegistration)
        .where(
            EventRegistration.event_key == event_key,
            EventRegistration.status.in_(("registered", "offered", "waitlisted")),
        )
        .order_by(EventRegistration.seq)
        .with_for_update()
    )
    notices = []
    for registration in rows:
        registration.status = "cancelled"
        registration.cancel_reason = "event_cancelled"
        registration.offer_expires_at = None
        registration.updated_at = now
        notices.append(notice(registration, "event.cancelled", reason="event_cancelled"))
    await session.flush()
    return notices


async def change_session(
    session: AsyncSession,
    event_key: str,
    session_id: str,
    body: SessionChange,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_OFFER_TTL,
) -> tuple[list[Notice], list[Offer]]:
    """Move, resize or re-room a session. A new time or place bumps the invites' SEQUENCE and tells every
    live registration (`event.changed`); more seats go to the waitlist. Fewer seats than are taken, a
    past or inverted time, or a clash in a room is refused at the field."""
    now = now or datetime.now(UTC)
    event = await get_event(session, event_key, lock=True)
    if event.status in ("cancelled", "completed"):
        raise EventConflict(f"the event is {event.status}")
    sitting = await _locked_session(session, event_key, session_id)
    start, end = body.start or sitting.start_at, body.end or sitting.end_at
    if body.start is not None and start <= now:
        raise EventInvalid(("body", "start"), "the session would start in the past")
    if end <= start:
        raise EventInvalid(("body", "end"), "a session must end after it starts")
    if body.capacity is not None and body.capacity < sitting.seats_taken:
        raise EventInvalid(
            ("body", "capacity"), f"{sitting.seats_taken} seats are taken: the capacity cannot go below that"
        )
    room = body.room if "room" in body.model_fields_set else sitting.room
    others = await session.scalars(
        select(EventSession).where(EventSession.event_key == event_key, EventSession.id != session_id)
    )
    for other in others:
        if room is not None and other.room == room and start < other.end_at and other.start_at < end:
            raise EventInvalid(
                ("body", "room"), f"the session would overlap session {other.id!r} in {room!r}"
            )
    moved = (start, end, room) != (sitting.start_at, sitting.end_at, sitting.room) or (
        "online_url" in body.model_fields_set and body.online_url != sitting.online_url
    )
    previous_start = sitting.start_at
    sitting.start_at, sitting.end_at, sitting.room = start, end, room
    if "online_url" in body.model_fields_set:
        sitting.online_url = body.online_url
    if body.capacity is not None:
        sitting.capacity = body.capacity
    notices: list[Notice] = []
    if moved:
        event.sequence += 1
        event.updated_at = now
        live = await list_registrations(session, event_key, session_id=session_id)
        notices = [
            notice(
                r,
                "event.changed",
                change=event.sequence,
                start=start.isoformat(),
                end=end.isoformat(),
                room=room,
                previous_start=previous_start.isoformat(),
            )
            for r in live
            if r.status in ("registered", "offered", "waitlisted")
        ]
    offered, offers = await offer_free_seats(session, sitting, now=now, ttl=ttl)
    await session.flush()
    return notices + offered, offers


async def change_event(
    session: AsyncSession, event_key: str, body: EventChange, *, now: datetime | None = None
) -> list[Notice]:
    """Change an event's title, description, venue or organising team. A new title or venue (what a
    patient's calendar invite shows) bumps the invites' SEQUENCE and tells every live registration
    (`event.changed`, its session's `start` unchanged, so reminders keep their time)."""
    now = now or datetime.now(UTC)
    event = await get_event(session, event_key, lock=True)
    if event.status in ("cancelled", "completed"):
        raise EventConflict(f"the event is {event.status}")
    given = body.model_fields_set
    venue = body.venue.model_dump() if body.venue is not None else None
    told = ("title" in given and body.title != event.title) or ("venue" in given and venue != event.venue)
    if "title" in given and body.title is not None:
        event.title = body.title
    if "description" in given:
        event.description = body.description
    if "venue" in given:
        event.venue = venue
    if "organiser_team" in given:
        event.organiser_team = body.organiser_team
    event.updated_at = now
    if not told or event.status == "draft":
        await session.flush()
        return []
    event.sequence += 1
    sittings = {
        sitting.id: sitting
        for sitting in await session.scalars(select(EventSession).where(EventSession.event_key == event_key))
    }
    live = await list_registrations(session, event_key)
    notices = [
        notice(
            r,
            "event.changed",
            change=event.sequence,
            sitting=sittings[r.session_id],
            room=sittings[r.session_id].room,
            title=event.title,
            previous_start=sittings[r.session_id].start_at.isoformat(),
        )
        for r in live
        if r.status in ("registered", "offered", "waitlisted")
    ]
    await session.flush()
    return notices
