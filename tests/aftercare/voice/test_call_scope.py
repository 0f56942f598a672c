"""A call's record is patient data: a transaction scoped to facilities sees only the calls of their
patients (row-level security, as for messages)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.facility_tables import Facility, PatientFacility
from tests.helpers import load_synthea_patient
from tests.voice_calls import place_call, voice_provider

pytestmark = pytest.mark.usefixtures("empty_database")


async def visible_calls(sessions: async_sessionmaker[AsyncSession], grant: str) -> int:
    async with sessions.begin() as session:
        await session.execute(text("SET LOCAL ROLE aftercare_scoped"))
        await session.execute(
            text("SELECT set_config('aftercare.facilities', :grant, true)"), {"grant": grant}
        )
        count: int = await session.scalar(text("SELECT count(*) FROM voice_calls")) or 0
        return count


async def test_only_the_patient_s_facility_sees_the_call(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    patient = await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        session.add(Facility(key="north", name="North Hospital", timezone="America/New_York"))
        session.add(Facility(key="south", name="South Clinic", timezone="America/Los_Angeles"))
        await session.flush()
        session.add(PatientFacility(patient_id=patient["id"], facility="north", source="test"))
    await place_call(sessions, voice_provider(sessions, twilio_mock))

    assert await visible_calls(sessions, "north") == 1
    assert await visible_calls(sessions, "south") == 0
