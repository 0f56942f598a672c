"""Capacity is kept by PostgreSQL: 200 registrations racing for the last seats never oversell."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.db.engine import create_engine, session_factory
from aftercare.events.errors import EventConflict
from aftercare.events.registrations import register
from aftercare.events.store import create_event, publish_event
from aftercare.settings import Settings
from models.event_api import EventIn, RegistrationIn, SessionIn
from models.event_tables import EventRegistration, EventSession
from models.tables import Patient


async def a_published_event(sessions: async_sessionmaker[AsyncSession], capacity: int, patients: int) -> None:
    start = datetime.now(UTC) + timedelta(days=7)
    async with sessions.begin() as session:
        session.add_all(Patient(id=f"p-{n}", version_id="1") for n in range(patients))
        await create_event(
            session,
            EventIn(
                key="cardiac-rehab",
                title="Cardiac rehab orientation",
                timezone="America/New_York",
                sessions=[SessionIn(id="s1", start=start, end=start + timedelta(hours=1), capacity=capacity)],
            ),
        )
        await publish_event(session, "cardiac-rehab")


async def test_200_concurrent_registrations_for_the_last_seats_fill_exactly_the_capacity(
    empty_database: AsyncEngine, settings: Settings
) -> None:
    # Registrations for one session queue on its row lock: on a loaded machine the last of 220 waits
    # longer for a connection than the production pool timeout, which the API's admission control covers.
    engine = create_engine(settings.database_url, pool_size=10, pool_timeout=300)
    sessions = session_factory(engine)
    await a_published_event(sessions, capacity=5, patients=200)

    async def attempt(patient: str) -> str:
        try:
            async with sessions.begin() as session:
                change = await register(
                    session, "cardiac-rehab", RegistrationIn(patient_id=patient, session_id="s1")
                )
                return change.registration.status
        except (EventConflict, IntegrityError):
            return "conflict"

    # every patient once, and the first 20 a second time at the same moment
    outcomes = await asyncio.gather(
        *(attempt(f"p-{n}") for n in range(200)), *(attempt(f"p-{n}") for n in range(20))
    )

    assert outcomes.count("registered") == 5
    assert outcomes.count("waitlisted") == 195
    assert outcomes.count("conflict") == 20
    async with sessions() as session:
        seats = await session.scalar(select(EventSession.seats_taken))
        per_patient = await session.execute(
            select(EventRegistration.patient_id, func.count()).group_by(EventRegistration.patient_id)
        )
        registered = await session.scalar(
            select(func.count()).where(EventRegistration.status == "registered")
        )
    await engine.dispose()
    assert seats == 5
    assert registered == 5
    assert all(count == 1 for _, count in per_patient)
