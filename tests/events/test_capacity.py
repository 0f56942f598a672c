"""Capacity is kept by PostgreSQL: 200 registrations racing for the last seats never oversell."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.db.engine import create_engine, session_factory
from aftercare.settings import Settings
from models.event_tables import EventRegistration
from tests.events.scenario import a_published_event, oversold_and_doubled, patient_ids, register_at_once


async def test_200_concurrent_registrations_for_the_last_seats_fill_exactly_the_capacity(
    empty_database: AsyncEngine, settings: Settings
) -> None:
    # Registrations for one session queue on its row lock: on a loaded machine the last of 220 waits
    # longer for a connection than the production pool timeout, which the API's admission control covers.
    engine = create_engine(settings.database_url, pool_size=10, pool_timeout=300)
    sessions = session_factory(engine)
    crowd = patient_ids(200)
    await a_published_event(sessions, capacity=5, patients=crowd)

    # every patient once, and the first 20 a second time at the same moment
    outcomes = await register_at_once(sessions, crowd + crowd[:20])

    assert outcomes == {"registered": 5, "waitlisted": 195, "conflict": 20}
    oversold, doubled = await oversold_and_doubled(sessions, capacity=5)
    async with sessions() as session:
        registered = await session.scalar(
            select(func.count()).where(EventRegistration.status == "registered")
        )
    await engine.dispose()
    assert (oversold, doubled) == (0, 0)
    assert registered == 5
