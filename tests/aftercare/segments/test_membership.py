"""Refreshing a segment records who entered and who left, with the times, and keeps one open stay per
patient however often it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.segments.membership import current_members, refresh_membership, stays_of_patient
from models.segment import SegmentDefinition
from models.tables import ClinicalEncounter, Patient

START = datetime(2024, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
DISCHARGED = SegmentDefinition.model_validate(
    {
        "key": "discharged",
        "name": "Discharged",
        "criteria": {"encounter": {"class": "IMP", "discharged_within": "P7D"}},
    }
)


async def test_entering_and_leaving_are_recorded_with_their_times(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [
                Patient(id="ann", version_id="1", birth_date=date(1950, 1, 1)),
                Patient(id="bob", version_id="1", birth_date=date(1960, 1, 1)),
                ClinicalEncounter(resource_id="e1", patient_id="ann", class_code="IMP", end_at=START - DAY),
                ClinicalEncounter(
                    resource_id="e2", patient_id="bob", class_code="IMP", end_at=START + 3 * DAY
                ),
            ]
        )

    moments = [START, START + DAY, START + 4 * DAY, START + 8 * DAY, START + 11 * DAY]
    refreshes = []
    for moment in moments:
        async with sessions.begin() as session:
            refreshes.append(await refresh_membership(session, DISCHARGED, moment))

    assert [(r.entered, r.exited) for r in refreshes] == [
        (["ann"], []),
        ([], []),  # nothing changed: no second stay
        (["bob"], []),
        ([], ["ann"]),  # ann's discharge is now 9 days old
        ([], ["bob"]),
    ]
    async with sessions() as session:
        assert await current_members(session, "discharged") == []
        stays = await stays_of_patient(session, "ann")
    assert [(stay.segment_key, stay.entered_at, stay.exited_at) for stay in stays] == [
        ("discharged", START, START + 8 * DAY)
    ]


async def test_a_patient_who_comes_back_gets_a_new_stay(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [
                Patient(id="ann", version_id="1"),
                ClinicalEncounter(resource_id="e1", patient_id="ann", class_code="IMP", end_at=START - DAY),
            ]
        )
    for moment in (START, START + 10 * DAY):
        async with sessions.begin() as session:
            await refresh_membership(session, DISCHARGED, moment)
    async with sessions.begin() as session:
        session.add(
            ClinicalEncounter(resource_id="e2", patient_id="ann", class_code="IMP", end_at=START + 19 * DAY)
        )
    async with sessions.begin() as session:
        again = await refresh_membership(session, DISCHARGED, START + 20 * DAY)
        assert again.entered == ["ann"]
        assert await current_members(session, "discharged") == ["ann"]
        assert len(await stays_of_patient(session, "ann")) == 2
