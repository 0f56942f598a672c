"""Event attendance per event and session: registered, offered a freed seat, waitlisted, cancelled,
attended and no-show, and the no-show rate. Counted straight from the registrations (an event's rows
are few; row-level security limits them to the caller's facilities like every patient row)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.event_tables import EventRegistration

STATUSES = ("registered", "offered", "waitlisted", "cancelled", "attended", "no_show")


@dataclass
class SessionAttendance:
    """One session's registrations by status, and the offers of freed seats made."""

    event_key: str
    session_id: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    offers: int = 0

    @property
    def no_show_rate(self) -> float | None:
        """No-shows of those whose attendance is known (attended or no-show)."""
        known = self.counts["attended"] + self.counts["no_show"]
        return self.counts["no_show"] / known if known else None


async def attendance(session: AsyncSession, event_key: str | None = None) -> list[SessionAttendance]:
    """Per event and session, in key order."""
    table = EventRegistration
    query = select(table.event_key, table.session_id, table.status, func.count(), func.sum(table.offers))
    if event_key is not None:
        query = query.where(table.event_key == event_key)
    rows: dict[tuple[str, str], SessionAttendance] = {}
    for event, sitting, status, count, offers in await session.execute(
        query.group_by(table.event_key, table.session_id, table.status)
    ):
        row = rows.setdefault((event, sitting), SessionAttendance(event, sitting))
        row.counts[status] = row.counts.get(status, 0) + int(count)
        row.offers += int(offers or 0)
    return [rows[key] for key in sorted(rows)]
