"""Send windows on the patient's clock: is a time zone's window open now, until when, and when does it
open next. Times are wall-clock times, so a window of 09:00-18:00 stays 09:00-18:00 across DST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models.campaign import WEEKDAYS, SendWindow
from models.zones import known_zone, zone_info

# Far enough ahead to find the next opening of any window with at least one day a week.
_LOOK_AHEAD_DAYS = 8


@dataclass(frozen=True)
class WindowState:
    """Open until `closes_at` (None: no window, always open), or closed until `opens_at`."""

    open: bool
    closes_at: datetime | None = None
    opens_at: datetime | None = None


def zone_named(name: str, fallback: str) -> ZoneInfo:
    """The named time zone, or the fallback when the name is not one."""
    return zone_info(name if known_zone(name) else fallback)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _windows_around(window: SendWindow, zone: ZoneInfo, now: datetime) -> list[tuple[datetime, datetime]]:
    start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
    today = now.astimezone(zone).date()
    spans = []
    for offset in range(-1, _LOOK_AHEAD_DAYS):
        day = today + timedelta(days=offset)
        if window.days is not None and WEEKDAYS[day.weekday()] not in window.days:
            continue
        closing_day = day if end > start else day + timedelta(days=1)
        spans.append((_at(day, start, zone), _at(closing_day, end, zone)))
    return spans


def window_state(window: SendWindow | None, zone: ZoneInfo, now: datetime) -> WindowState:
    """Whether messages may go to patients in `zone` at `now`."""
    if window is None:
        return WindowState(open=True)
    spans = _windows_around(window, zone, now)
    for opens, closes in spans:
        if opens <= now < closes:
            return WindowState(open=True, closes_at=closes)
    upcoming = [opens for opens, _ in spans if opens > now]
    return WindowState(open=False, opens_at=min(upcoming) if upcoming else None)
