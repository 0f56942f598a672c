"""Quiet hours: a send due while the patient's clock is inside them waits for their end.

The window is the patient's own (`quiet_hours` attribute, `22:00-07:00` or `none`) or the hospital's,
in the patient's time zone, else the hospital's. Times are wall-clock times, so DST days just work:
08:00 on a spring-forward day is one hour sooner after midnight than usual.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from models.zones import zone_info


def in_quiet_hours(local: time, window: tuple[time, time]) -> bool:
    """True when the local time is inside the window (which may span midnight)."""
    start, end = window
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(now: datetime, window: tuple[time, time] | None, zone_name: str) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None when `now` is not in quiet hours."""
    if window is None:
        return None
    zone = zone_info(zone_name)
    local = now.astimezone(zone)
    if not in_quiet_hours(local.timetz().replace(tzinfo=None), window):
        return None
    start, end = window
    day = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)
    until = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
    # A window end that falls in a DST gap maps forward past the gap; never answer a moment not ahead.
    return until if until > now else now + timedelta(minutes=1)
