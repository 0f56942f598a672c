"""Store activities: local times across time zones and DST changes, and condition evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities, next_local_time
from models.temporal import EnrollmentTrigger, EvaluateConditionsInput, ExpressionScope, PatientEvent
from tests.conftest import ABDUL_PATIENT_ID
from tests.helpers import load_synthea_patient

NEW_YORK = ZoneInfo("America/New_York")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def test_the_next_nine_oclock_is_tomorrow_when_today_has_passed() -> None:
    at = next_local_time(local("2026-06-10T10:00").astimezone(UTC), "09:00", "America/New_York")
    assert at.astimezone(NEW_YORK) == local("2026-06-11T09:00")


def test_a_time_later_today_is_today() -> None:
    at = next_local_time(local("2026-06-10T07:00").astimezone(UTC), "09:00", "America/New_York")
    assert at.astimezone(NEW_YORK) == local("2026-06-10T09:00")


def test_nine_oclock_after_the_spring_change_keeps_the_wall_clock() -> None:
    at = next_local_time(local("2026-03-07T12:00").astimezone(UTC), "09:00", "America/New_York")
    assert at == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_a_time_inside_the_spring_gap_moves_past_the_gap() -> None:
    at = next_local_time(local("2026-03-08T00:30").astimezone(UTC), "02:30", "America/New_York")
    assert at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert at.astimezone(NEW_YORK).strftime("%H:%M") == "03:30"


def test_a_repeated_time_on_the_fall_change_takes_the_first() -> None:
    at = next_local_time(local("2026-11-01T00:00").astimezone(UTC), "01:30", "America/New_York")
    assert at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


@pytest.mark.usefixtures("empty_database")
async def test_conditions_see_the_patient_and_the_event(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_synthea_patient(sessions)
    activities = StoreActivities(sessions, "America/New_York")
    scope = ExpressionScope(
        enrollment_id="e1",
        patient_id=ABDUL_PATIENT_ID,
        trigger=EnrollmentTrigger(kind="manual"),
        event=PatientEvent(id="r1", type="sms.reply", data={"body": "no"}),
    )
    result = await ActivityEnvironment().run(
        activities.evaluate_conditions,
        EvaluateConditionsInput(
            scope=scope, conditions=["%event.data.body = 'yes'", "%patient.gender = 'male'"]
        ),
    )
    assert result.first_true == 1


@pytest.mark.usefixtures("empty_database")
async def test_a_condition_that_cannot_evaluate_is_a_permanent_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = StoreActivities(sessions, "America/New_York")
    scope = ExpressionScope(
        enrollment_id="e1", patient_id=ABDUL_PATIENT_ID, trigger=EnrollmentTrigger(kind="manual")
    )
    with pytest.raises(ApplicationError) as error:
        await ActivityEnvironment().run(
            activities.evaluate_conditions,
            EvaluateConditionsInput(scope=scope, conditions=["%nothing.here = 1"]),
        )
    assert error.value.type == "ExpressionError"
    assert error.value.non_retryable
