"""Which facility a definition being published (template, journey, segment, campaign) belongs to, and
whether the caller may publish it there.

A key belongs to one facility, or to the whole group, for all its versions: a new version without a
`facility` keeps the key's; naming another is a 409. A first version without one belongs to the whole
group when a whole-group caller publishes it, else to the caller's one facility. A caller limited to
some facilities publishes only within their subtrees (403 otherwise); row-level security refuses any
other write as well (`aftercare/facilities/policies.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.security.principal import Principal
from aftercare.store.facilities import list_facilities, subtree


def _owner(facility: str | None) -> str:
    return f"facility {facility!r}" if facility else "the whole group"


async def owning_facility(
    session: AsyncSession, principal: Principal, table: Any, key: str, requested: str | None, *, what: str
) -> str | None:
    """The facility the definition `key` is published for (in the caller's transaction)."""
    facilities = await list_facilities(session)
    roots = {facility.key for facility in facilities if facility.parent is None}
    whole = not principal.facilities or bool(principal.facilities & roots)
    existing = (
        await session.execute(select(table.facility).where(table.key == key).order_by(table.version.desc()))
    ).first()
    if requested is not None:
        facility: str | None = requested
    elif existing is not None:
        facility = existing[0]
    elif whole:
        facility = None
    elif len(principal.facilities) == 1:
        facility = next(iter(principal.facilities))
    else:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"name the {what}'s `facility`: the caller reaches several facilities",
        )
    if facility is not None and facility not in {row.key for row in facilities}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no facility {facility!r}")
    if existing is not None and existing[0] != facility:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{what} {key!r} belongs to {_owner(existing[0])}; its versions keep it",
        )
    if not whole and facility not in subtree(facilities, principal.facilities):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a caller limited to some facilities publishes only for them, not for {_owner(facility)}",
        )
    return facility
