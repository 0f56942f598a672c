"""Changing an event's own details: who is told, and what their reminders keep."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.events.registrations import change_event, register
from models.event_api import EventChange, RegistrationIn, Venue
from tests.events.scenario import EVENT, SESSION, a_published_event


async def test_a_new_venue_tells_each_live_registration_with_its_session_time_unchanged(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await a_published_event(sessions, capacity=1, patients=["ana", "ben"])
    async with sessions.begin() as session:
        for patient in ("ana", "ben"):
            await register(session, EVENT, RegistrationIn(patient_id=patient, session_id=SESSION))

    async with sessions.begin() as session:
        moved = await change_event(session, EVENT, EventChange(venue=Venue(name="North clinic")))
    async with sessions.begin() as session:
        described = await change_event(session, EVENT, EventChange(description="Bring a friend"))
    async with sessions.begin() as session:
        same = await change_event(session, EVENT, EventChange(venue=Venue(name="North clinic")))

    assert sorted((n.patient_id, n.type) for n in moved) == [
        ("ana", "event.changed"),
        ("ben", "event.changed"),
    ]
    statuses = {n.patient_id: n.data["status"] for n in moved}
    assert statuses == {"ana": "registered", "ben": "waitlisted"}
    for changed in moved:
        assert changed.data["start"] == changed.data["previous_start"]  # reminders keep their time
        assert changed.data["title"] == "Cardiac rehab orientation"
        assert changed.id.endswith(":v1")
    assert described == []
    assert same == []  # the same venue again is no news
