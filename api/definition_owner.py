"""Which facility a definition being published (template, journey, segment, campaign) belongs to, and
whether the caller may publish it there.

A key belongs to one facility, or to the whole group, for all its versions: a new version without a
`facility` keeps the key's; naming another is a 409. A first version without one belongs to the whole
group when a whole-group caller publishes it, else to the caller's one facility. A caller limited to
some facilities publishes only within their subtrees (403 otherwise); row-level security refuses any
other write as well (`aftercare/facilities/policies.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.security.principal import Principal
from aftercare.store.facilities import list_facilities, subtree
from models.campaign import CampaignDefinition
from models.facility_tables import Facility
from models.journey import JourneyDefinition
from models.segment import SegmentDefinition
from models.template import TemplateDefinition

# The definitions that belong to a facility or to the whole group.
D = TypeVar("D", JourneyDefinition, TemplateDefinition, SegmentDefinition, CampaignDefinition)


async def owned(session: AsyncSession, principal: Principal, table: Any, definition: D, *, what: str) -> D:
    """The definition as it is published: with the facility it belongs to (`owning_facility`)."""
    key, requested = definition.key, definition.facility
    facility = await owning_facility(session, principal, table, key, requested, what=what)
    return definition.model_copy(update={"facility": facility})


def _owner(facility: str | None) -> str:
    return f"facility {facility!r}" if facility else "the whole group"


async def owning_facility(
    session: AsyncSession, principal: Principal, table: Any, key: str, requested: str | None, *, what: str
) -> str | None:
    """The facility the definition `key` is published for (in the caller's transaction)."""
    facilities = await list_facilities(session)
    whole = _whole_group(facilities, principal)
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
    if existing is not None and existing[0] != facility:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{what} {key!r} belongs to {_owner(existing[0])}; its versions keep it",
        )
    _within_reach(facilities, principal, facility)
    return facility


def _whole_group(facilities: Sequence[Facility], principal: Principal) -> bool:
    roots = {facility.key for facility in facilities if facility.parent is None}
    return not principal.facilities or bool(principal.facilities & roots)


def _within_reach(facilities: Sequence[Facility], principal: Principal, facility: str | None) -> None:
    if facility is not None and facility not in {row.key for row in facilities}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no facility {facility!r}")
    if not _whole_group(facilities, principal) and facility not in subtree(facilities, principal.facilities):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a caller limited to some facilities acts only for them, not for {_owner(facility)}",
        )


async def check_reach(session: AsyncSession, principal: Principal, facility: str | None) -> None:
    """Refuse a setting naming a facility the caller does not reach (403; an unknown one: 422)."""
    _within_reach(await list_facilities(session), principal, facility)
