"""Business days on a facility's calendar: weekdays that are not its holidays. Pure and deterministic,
so workflows may use it on holidays an activity read for them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from models.zones import zone_info

WEEKEND = (5, 6)  # Saturday, Sunday


def is_business_day(day: date, holidays: Iterable[date]) -> bool:
    """A weekday that is not a holiday."""
    return day.weekday() not in WEEKEND and day not in set(holidays)


def add_business_days(start: datetime, days: int, zone_name: str, holidays: Iterable[date]) -> datetime:
    """The moment `days` business days after `start`, at the same wall-clock time in the zone (UTC).

    Friday 10:00 plus one business day is Monday 10:00, or Tuesday 10:00 when Monday is a holiday.
    """
    zone = zone_info(zone_name)
    closed = set(holidays)
    local = start.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_business_day(day, closed):
            counted += 1
    target = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=zone)
    return target.astimezone(UTC)


def due_at(
    now: datetime,
    *,
    duration: timedelta | None,
    business_days: int | None,
    zone_name: str,
    holidays: Iterable[date],
) -> datetime | None:
    """When work created `now` is due: after `duration`, or after `business_days` on the calendar (the
    same time of day, weekends and holidays skipped); None when neither is given."""
    if business_days is not None:
        return add_business_days(now, business_days, zone_name, holidays)
    return now + duration if duration is not None else None
