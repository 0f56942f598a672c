"""A facility's holidays: the public holidays of its country (and subdivision) from the `holidays`
package, plus its own list. Read in activities and stores, never in workflows (the days reach a
workflow as data)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays as public_holidays


def facility_holidays(
    local: Iterable[str | date], country: str | None, subdivision: str | None, years: Iterable[int]
) -> set[date]:
    """The local list (ISO dates or dates) and, when the facility names a country, its public holidays
    in these years; an unknown country or subdivision adds none."""
    days = {day if isinstance(day, date) else date.fromisoformat(day) for day in local}
    if country:
        try:
            found = public_holidays.country_holidays(
                country, subdiv=subdivision or None, years=sorted(set(years))
            )
        except NotImplementedError:
            return days
        days |= set(found)
    return days
