"""Time series from the rollups: messages and enrollments per hour or per day of the viewer's time
zone. The rollups keep UTC hours, so a local day is exact in every zone whose offset is whole hours;
in a zone with a half-hour offset a day starts at the UTC hour boundary before local midnight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.analytics.live import ENTRIES, MESSAGES, OUTCOMES
from aftercare.analytics.messages import COUNTS
from aftercare.analytics.window import Window
from models.zones import zone_info

Interval = Literal["hour", "day"]


@dataclass
class Point:
    """One hour or day (its start, in the viewer's zone) and its counts."""

    start: datetime
    counts: dict[str, int] = field(default_factory=dict)


def _local_start(hour: Any, interval: Interval, zone: str) -> Any:
    """The start of the local hour or day holding `hour`, as an instant."""
    return func.timezone(zone, func.date_trunc(literal(interval), func.timezone(zone, hour)))


def _points(rows: Any, zone: str, names: tuple[str, ...]) -> dict[datetime, Point]:
    local = zone_info(zone)
    points: dict[datetime, Point] = {}
    for row in rows:
        start = row[0].astimezone(local)
        point = points.setdefault(start, Point(start, dict.fromkeys(names, 0)))
        for name, value in zip(names, row[1:], strict=True):
            point.counts[name] += int(value or 0)
    return points


async def message_series(
    session: AsyncSession,
    interval: Interval,
    zone: str,
    window: Window | None = None,
    *,
    channel: str | None = None,
    journey_key: str | None = None,
) -> list[Point]:
    """Message counts per local hour or day, oldest first (hours without messages left out)."""
    table = MESSAGES
    # Summed per UTC hour first (the rollups' own key), then per local hour or day: the zone is applied
    # to each hour once, not to each of the (at millions of messages, hundreds of thousands of) rows.
    query = select(table.hour, *(func.sum(getattr(table, name)).label(name) for name in COUNTS)).where(
        (window or Window()).over(table.hour)
    )
    if channel is not None:
        query = query.where(table.channel == channel)
    if journey_key is not None:
        query = query.where(table.journey_key == journey_key)
    hourly = query.group_by(table.hour).subquery("hourly")
    start = _local_start(hourly.c.hour, interval, zone).label("start")
    rows = await session.execute(
        select(start, *(func.sum(hourly.c[name]) for name in COUNTS)).group_by(start).order_by(start)
    )
    return list(_points(rows, zone, COUNTS).values())


async def journey_series(
    session: AsyncSession,
    journey_key: str,
    interval: Interval,
    zone: str,
    window: Window | None = None,
    version: int | None = None,
) -> list[Point]:
    """Enrollments entered and ended (per status) per local hour or day, oldest first."""
    window = window or Window()
    entries, outcomes = ENTRIES, OUTCOMES
    entry_start = _local_start(entries.hour, interval, zone).label("start")
    entered = (
        select(entry_start, func.sum(entries.entered))
        .where(entries.journey_key == journey_key, window.over(entries.hour))
        .group_by(entry_start)
    )
    end_start = _local_start(outcomes.hour, interval, zone).label("start")
    ended = (
        select(end_start, outcomes.status, func.sum(outcomes.n))
        .where(outcomes.journey_key == journey_key, window.over(outcomes.hour))
        .group_by(end_start, outcomes.status)
    )
    if version is not None:
        entered = entered.where(entries.journey_version == version)
        ended = ended.where(outcomes.journey_version == version)
    names = ("entered", "completed", "exited", "cancelled", "failed")
    points = _points(await session.execute(entered), zone, ("entered",))
    local = zone_info(zone)
    for moment, status, count in await session.execute(ended):
        start = moment.astimezone(local)
        point = points.setdefault(start, Point(start))
        point.counts[status] = point.counts.get(status, 0) + int(count)
    for point in points.values():
        point.counts = {name: point.counts.get(name, 0) for name in names}
    return [points[start] for start in sorted(points)]
