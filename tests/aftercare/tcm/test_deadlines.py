"""TCM deadlines across weekends, holidays and time zones: contact by the end of the second business
day after the discharge day, the visit by day 7 or 14; a facility's holidays from its country (the
`holidays` package) and its own list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.facilities.holidays import facility_holidays
from aftercare.facilities.voice import voices_of
from aftercare.store.tcm_episodes import Discharged, episode_rows
from aftercare.tcm.deadlines import complexity_of, contact_due, visit_due
from models.facility_tables import Facility, PatientFacility

THANKSGIVING = date(2025, 11, 27)  # a Thursday


def test_a_wednesday_discharge_before_a_thursday_holiday_is_due_by_the_end_of_monday() -> None:
    wednesday = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)  # 10:00 in New York
    due = contact_due(wednesday, "America/New_York", [THANKSGIVING])
    # Thursday is a holiday, Friday is business day 1, the weekend does not count, Monday is day 2.
    assert due == datetime(2025, 12, 2, 4, 59, 59, tzinfo=UTC)  # Monday 1 December 23:59:59 EST
    assert contact_due(wednesday, "America/New_York", []) == datetime(2025, 11, 29, 4, 59, 59, tzinfo=UTC)


def test_a_friday_discharge_is_due_by_the_end_of_tuesday() -> None:
    friday = datetime(2025, 11, 21, 18, 0, tzinfo=UTC)
    assert contact_due(friday, "UTC", []) == datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)


def test_the_discharge_day_is_the_hospitals_local_day() -> None:
    # 02:00 UTC on Thursday is still Wednesday evening in Los Angeles.
    late = datetime(2025, 11, 27, 2, 0, tzinfo=UTC)
    assert contact_due(late, "UTC", [THANKSGIVING]).date() == date(2025, 12, 1)  # Thu discharge: Fri, Mon
    los_angeles = contact_due(late, "America/Los_Angeles", [THANKSGIVING])
    assert los_angeles == datetime(2025, 12, 2, 7, 59, 59, tzinfo=UTC)  # Monday 23:59:59 PST
    # In Sydney the same instant is Thursday afternoon (no US holiday there): Friday, Monday.
    assert contact_due(late, "Australia/Sydney", []) == datetime(2025, 12, 1, 12, 59, 59, tzinfo=UTC)


def test_a_deadline_across_a_daylight_saving_change_ends_at_local_midnight() -> None:
    friday = datetime(2025, 10, 31, 16, 0, tzinfo=UTC)  # clocks go back on Sunday 2 November
    assert contact_due(friday, "America/New_York", []) == datetime(2025, 11, 5, 4, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(("complexity", "day"), [("high", 3), ("moderate", 10)])
def test_the_visit_is_due_by_the_end_of_day_7_or_14(complexity: str, day: int) -> None:
    wednesday = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)
    due = visit_due(wednesday, "America/New_York", complexity)
    assert due.astimezone(UTC).date() == date(2025, 12, day + 1)  # 23:59:59 EST is 04:59:59 UTC next day
    assert (due.hour, due.minute) == (4, 59)


def test_high_risk_means_high_complexity() -> None:
    assert [complexity_of(band) for band in ("high", "moderate", "low", None)] == [
        "high",
        "moderate",
        "moderate",
        "moderate",
    ]


def test_a_facility_s_public_holidays_come_from_its_country_and_its_own_list() -> None:
    days = facility_holidays(["2025-11-28"], "US", None, [2025])
    assert THANKSGIVING in days
    assert date(2025, 11, 28) in days
    assert date(2025, 12, 25) in days
    assert facility_holidays(["2025-11-28"], None, None, [2025]) == {date(2025, 11, 28)}
    assert facility_holidays([], "ZZ", None, [2025]) == set()  # an unknown country adds none
    # Bavaria keeps Epiphany, Berlin does not.
    assert date(2026, 1, 6) in facility_holidays([], "DE", "BY", [2026])
    assert date(2026, 1, 6) not in facility_holidays([], "DE", "BE", [2026])


async def test_an_episode_of_a_us_facility_skips_thanksgiving_without_a_local_list(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        session.add(
            Facility(key="us-hospital", name="US Hospital", timezone="America/New_York", country="US")
        )
        await session.flush()
        session.add(
            PatientFacility(patient_id="thanks-p", facility="us-hospital", source="managing_organization")
        )
    wednesday = datetime(2025, 11, 26, 15, 0, tzinfo=UTC)
    async with sessions() as session:
        voice = (await voices_of(session, ["thanks-p"]))["thanks-p"]
    discharged = Discharged("thanks-p", "thanks-stay", wednesday, "high", voice, "UTC")
    [episode] = episode_rows([discharged], now=wednesday + timedelta(hours=2))
    assert (episode["facility"], episode["timezone"]) == ("us-hospital", "America/New_York")
    contact_due_at = datetime.fromisoformat(episode["contact_due_at"])
    assert contact_due_at == datetime(2025, 12, 2, 4, 59, 59, tzinfo=UTC)  # end of Monday, EST
    visit_due_at = datetime.fromisoformat(episode["visit_due_at"])
    assert visit_due_at == datetime(2025, 12, 4, 4, 59, 59, tzinfo=UTC)  # day 7, high complexity
    # A discharge over 30 days before `now` opens no episode.
    assert episode_rows([discharged], now=wednesday + timedelta(days=31)) == []
