"""Business days on a facility's calendar: weekends and its holidays do not count, the time of day
stays, and daylight saving changes nothing on the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from aftercare.facilities.calendar import add_business_days, due_at, is_business_day

NEW_YORK = ZoneInfo("America/New_York")


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK).astimezone(UTC)


def test_friday_plus_one_business_day_is_monday_or_tuesday_after_a_holiday() -> None:
    friday = date(2026, 12, 4)
    assert add_business_days(at(friday, 10), 1, "America/New_York", []) == at(date(2026, 12, 7), 10)
    assert add_business_days(at(friday, 10), 1, "America/New_York", [date(2026, 12, 7)]) == at(
        date(2026, 12, 8), 10
    )


def test_holidays_are_the_facility_s_own() -> None:
    christmas_eve = date(2026, 12, 24)
    assert add_business_days(at(christmas_eve, 9), 2, "America/New_York", [date(2026, 12, 25)]) == at(
        date(2026, 12, 29), 9
    )
    assert add_business_days(at(christmas_eve, 9), 2, "America/New_York", []) == at(date(2026, 12, 28), 9)


def test_the_wall_clock_time_survives_a_daylight_saving_change() -> None:
    friday = date(2026, 10, 30)  # New York falls back on Sunday 1 November
    assert add_business_days(at(friday, 9), 1, "America/New_York", []) == at(date(2026, 11, 2), 9)


def test_a_business_day_is_a_weekday_that_is_not_a_holiday() -> None:
    assert is_business_day(date(2026, 12, 7), [])
    assert not is_business_day(date(2026, 12, 5), [])
    assert not is_business_day(date(2026, 12, 7), [date(2026, 12, 7)])


def test_a_task_due_in_one_business_day_from_friday_is_due_monday_or_tuesday_after_a_holiday() -> None:
    friday = at(date(2026, 12, 4), 15)

    def due(duration: timedelta | None, business_days: int | None, holidays: list[date]) -> datetime | None:
        return due_at(
            friday,
            duration=duration,
            business_days=business_days,
            zone_name="America/New_York",
            holidays=holidays,
        )

    assert due(None, 1, []) == at(date(2026, 12, 7), 15)
    assert due(None, 1, [date(2026, 12, 7)]) == at(date(2026, 12, 8), 15)
    assert due(timedelta(days=1), None, [date(2026, 12, 7)]) == at(date(2026, 12, 5), 15)  # P1D: Saturday
    assert due(None, None, []) is None
