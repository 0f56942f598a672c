"""TCM deadlines on the hospital's calendar (pure and deterministic).

- Contact: by the end of the second business day after the day of discharge, in the hospital's zone
  (business days are weekdays that are not the facility's holidays: `aftercare/facilities/calendar.py`).
- Visit: by the end of the 7th calendar day after discharge for high complexity (CPT 99496), the 14th for
  moderate (99495).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aftercare.facilities.calendar import add_business_days
from models.zones import zone_info

CONTACT_BUSINESS_DAYS = 2
VISIT_DAYS = {"high": 7, "moderate": 14}
COMPLEXITIES = tuple(VISIT_DAYS)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last instant (to the second) of a local day, in UTC."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone).astimezone(UTC)


def contact_due(discharged_at: datetime, zone_name: str, holidays: Iterable[date]) -> datetime:
    """The end of the second business day after the discharge day."""
    zone = zone_info(zone_name)
    discharge_day = discharged_at.astimezone(zone).date()
    noon = datetime.combine(discharge_day, time(12), tzinfo=zone)
    due_day = add_business_days(noon, CONTACT_BUSINESS_DAYS, zone_name, holidays).astimezone(zone).date()
    return end_of_day(due_day, zone)


def visit_due(discharged_at: datetime, zone_name: str, complexity: str) -> datetime:
    """The end of day 7 (high complexity) or 14 (moderate) after the discharge day."""
    zone = zone_info(zone_name)
    return end_of_day(discharged_at.astimezone(zone).date() + timedelta(days=VISIT_DAYS[complexity]), zone)


def complexity_of(band: str | None) -> str:
    """The default complexity of a risk band: high risk needs the 7-day visit, others the 14-day one."""
    return "high" if band == "high" else "moderate"
