"""The business-day calendar of one patient: the zone (the patient's own first, then the facility's, then
the install's) and the holidays of the facility they are placed in. Read in activities; reaches
workflows as data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.holidays import facility_holidays
from aftercare.facilities.voice import voices_of
from aftercare.store.patients import get_patient
from models.temporal import FacilityCalendarResult


def calendar_years() -> range:
    """The years a business-day count may cross: from last year (a clock behind) to two years on."""
    this_year = datetime.now(UTC).year
    return range(this_year - 1, this_year + 3)


async def patient_calendar(
    session: AsyncSession, patient_id: str, default_timezone: str
) -> FacilityCalendarResult:
    """The calendar of the patient's facility, or the install's zone without holidays."""
    patient = await get_patient(session, patient_id)
    voice = (await voices_of(session, [patient_id])).get(patient_id)
    own_zone = patient.timezone if patient is not None else None
    if voice is None:
        return FacilityCalendarResult(timezone=own_zone or default_timezone)
    return FacilityCalendarResult(
        facility=voice.facility,
        timezone=own_zone or voice.timezone,
        holidays=sorted(
            facility_holidays(voice.holidays, voice.country, voice.subdivision, calendar_years())
        ),
    )
