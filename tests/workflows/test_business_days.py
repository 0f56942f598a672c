"""`wait: {business_days: N}` follows the calendar of the patient's facility: the same journey waits
longer for a patient whose facility closes on the coming days. The calendar reaches the workflow as
data from an activity, so the wait replays the same."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aftercare.facilities.calendar import add_business_days, is_business_day
from aftercare.store.enrollments import enrollment_history
from aftercare.store.patients import get_patient
from aftercare.store.tasks import list_tasks
from models.facility_tables import Facility, PatientFacility
from models.tables import Patient
from models.temporal import EnrollmentTrigger
from tests.helpers import load_synthea_patient, publish
from tests.workflows.fixtures import JourneyHarness
from tests.workflows.test_enrollment import journey

pytestmark = pytest.mark.usefixtures("empty_database")

ZONE = "America/Chicago"


def next_business_days(after: date, count: int) -> list[date]:
    days, day = [], after
    while len(days) < count:
        day += timedelta(days=1)
        if is_business_day(day, []):
            days.append(day)
    return days


async def place_in_clinic(journeys: JourneyHarness, patient_id: str, holidays: list[date]) -> Patient:
    """The patient placed in a facility in ZONE closed on these days; the patient as stored."""
    async with journeys.sessions.begin() as session:
        session.add(
            Facility(
                key="clinic", name="Clinic", timezone=ZONE, holidays=[day.isoformat() for day in holidays]
            )
        )
        await session.flush()
        session.add(PatientFacility(patient_id=patient_id, facility="clinic", source="managing_organization"))
    async with journeys.sessions() as session:
        stored = await get_patient(session, patient_id)
    assert stored is not None
    return stored


@pytest.mark.parametrize("closed_days", [0, 3])
async def test_business_day_waits_follow_the_facility_s_holidays(
    journeys: JourneyHarness, closed_days: int
) -> None:
    patient = await load_synthea_patient(journeys.sessions)
    now = await journeys.env.get_current_time()
    holidays = next_business_days(now.astimezone(ZoneInfo(ZONE)).date(), closed_days)
    stored = await place_in_clinic(journeys, patient["id"], holidays)
    definition = await publish(
        journeys.sessions,
        journey(
            {"id": "two-days", "wait": {"business_days": 2, "calendar": "hospital"}},
            {"id": "done", "end": {"outcome": "completed"}},
            key=f"business-{closed_days}",
        ),
    )
    async with journeys.make_worker():
        enrollment_id = await journeys.run_to_end(definition, patient["id"], EnrollmentTrigger(kind="manual"))
    async with journeys.sessions() as session:
        history = await enrollment_history(session, enrollment_id)
    waited = next(row for row in history if row.step == "two-days")
    expected = add_business_days(now, 2, stored.timezone or ZONE, holidays)
    assert abs((waited.at - expected).total_seconds()) < 60
    assert (waited.at - now) >= timedelta(days=2 + closed_days)


async def test_a_task_due_in_business_days_skips_the_facility_s_holidays(journeys: JourneyHarness) -> None:
    """`due_business_days: 1` on a task: due one business day on the facility's calendar after it was
    created; the facility closes on the next three business days, so it is due on the fourth."""
    patient = await load_synthea_patient(journeys.sessions)
    # The activity stamps the task with the worker's clock, not the time-skipping server's.
    holidays = next_business_days(datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date(), 3)
    stored = await place_in_clinic(journeys, patient["id"], holidays)
    definition = await publish(
        journeys.sessions,
        journey(
            {"id": "call", "task": {"queue": "nurses", "title": "Call", "due_business_days": 1}},
            {"id": "done", "end": {"outcome": "completed"}},
            key="business-due",
        ),
    )
    async with journeys.make_worker():
        await journeys.run_to_end(definition, patient["id"], EnrollmentTrigger(kind="manual"))
    async with journeys.sessions() as session:
        [task] = await list_tasks(session, queue="nurses")
    assert task.due_at is not None
    zone = ZoneInfo(stored.timezone or ZONE)
    expected = add_business_days(task.created_at, 1, stored.timezone or ZONE, holidays)
    assert abs((task.due_at - expected).total_seconds()) < 60
    assert task.due_at.astimezone(zone).date() == next_business_days(holidays[-1], 1)[0]
    assert (task.due_at - task.created_at) >= timedelta(days=4)
