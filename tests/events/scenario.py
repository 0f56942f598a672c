"""The event scenario the capacity test and `bench/events.py` share: one published event with one
session of a given capacity, a crowd of stored patients, and registrations racing for the seats through
the code the API runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.events.errors import EventConflict
from aftercare.events.registrations import register
from aftercare.events.store import create_event, publish_event
from models.event_api import EventIn, RegistrationIn, SessionIn
from models.event_tables import EventRegistration, EventSession
from models.tables import Patient

EVENT = "cardiac-rehab"
SESSION = "s1"


def patient_ids(count: int, prefix: str = "p") -> list[str]:
    """The crowd's ids: `p-0`, `p-1`, ..."""
    return [f"{prefix}-{n}" for n in range(count)]


async def a_published_event(
    sessions: async_sessionmaker[AsyncSession], capacity: int, patients: list[str], *, days_ahead: int = 7
) -> None:
    """The patients stored, and the event published with one session of `capacity` seats."""
    start = datetime.now(UTC) + timedelta(days=days_ahead)
    async with sessions.begin() as session:
        session.add_all(Patient(id=patient_id, version_id="1") for patient_id in patients)
        await create_event(
            session,
            EventIn(
                key=EVENT,
                title="Cardiac rehab orientation",
                timezone="America/New_York",
                sessions=[
                    SessionIn(id=SESSION, start=start, end=start + timedelta(hours=1), capacity=capacity)
                ],
            ),
        )
        await publish_event(session, EVENT)


async def register_at_once(sessions: async_sessionmaker[AsyncSession], patients: list[str]) -> Counter[str]:
    """Every patient registers at the same moment (one transaction each, as the API does): how many
    were `registered`, `waitlisted`, or refused as a `conflict` (the same patient twice)."""

    async def attempt(patient_id: str) -> str:
        try:
            async with sessions.begin() as session:
                change = await register(
                    session, EVENT, RegistrationIn(patient_id=patient_id, session_id=SESSION)
                )
                return change.registration.status
        except (EventConflict, IntegrityError):
            return "conflict"

    return Counter(await asyncio.gather(*(attempt(patient_id) for patient_id in patients)))


async def oversold_and_doubled(sessions: async_sessionmaker[AsyncSession], capacity: int) -> tuple[int, int]:
    """Seats taken beyond the capacity, and patients holding more than one registration."""
    async with sessions() as session:
        taken = await session.scalar(select(EventSession.seats_taken).where(EventSession.event_key == EVENT))
        doubled = await session.scalar(
            select(func.count()).select_from(
                select(EventRegistration.patient_id)
                .where(EventRegistration.event_key == EVENT)
                .group_by(EventRegistration.patient_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    return max(0, (taken or 0) - capacity), doubled or 0
