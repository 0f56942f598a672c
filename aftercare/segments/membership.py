"""Dynamic membership: a refresh compares a segment's members now with its open stays, opens a stay
for each patient who entered and closes the stay of each who left (two set-based statements)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ARRAY, String, and_, bindparam, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.scope import explicit_scope
from aftercare.segments.compiler import PATIENTS, members_query
from aftercare.segments.evaluate import context_for, limited_to, tune
from models.segment import SegmentDefinition
from models.segment_tables import SegmentMembership
from models.tables import table_of

STAYS = table_of(SegmentMembership)


@dataclass(frozen=True)
class Refresh:
    """Who entered and who left a segment at one refresh."""

    key: str
    entered: list[str]
    exited: list[str]


async def refresh_membership(
    session: AsyncSession, definition: SegmentDefinition, as_of: datetime, patient_id: str | None = None
) -> Refresh:
    """Bring the segment's stays up to date at `as_of` (in the caller's transaction); for one patient
    only when `patient_id` is given (every sub-query is then limited to that patient)."""
    context = await context_for(session, definition, as_of)
    if patient_id is not None:
        context = replace(context, patient_id=patient_id)
    members = members_query(definition, context)
    if patient_id is not None:
        members = members.where(PATIENTS.c.id == patient_id)
    await tune(session)
    # A caller limited to some facilities evaluates the segment once, as `members` does (one statement
    # on `patients` with the policies lifted, filtered by their facilities), and writes the stays under
    # the policies from that list: evaluated under the policies, a segment costs 2 to 12 times the CPU.
    async with explicit_scope(session) as reach:
        found = (
            None if reach is None else list(await session.scalars(await limited_to(session, members, reach)))
        )
    if found is None:
        current = members.subquery("current")
    else:
        listed = bindparam("current_members", found, type_=ARRAY(String))
        current = select(func.unnest(listed).label("id")).subquery("current")
    open_stay = and_(STAYS.c.segment_key == definition.key, STAYS.c.exited_at.is_(None))
    if patient_id is not None:
        open_stay = and_(open_stay, STAYS.c.patient_id == patient_id)
    entered = await session.scalars(
        insert(STAYS)
        .from_select(
            ["segment_key", "patient_id", "segment_version", "entered_at"],
            select(literal(definition.key), current.c.id, literal(definition.version), literal(as_of)).where(
                ~exists().where(open_stay, STAYS.c.patient_id == current.c.id)
            ),
        )
        .returning(STAYS.c.patient_id)
    )
    entered_ids = sorted(entered)
    exited = await session.scalars(
        update(STAYS)
        .where(open_stay, STAYS.c.patient_id.not_in(select(current.c.id)))
        .values(exited_at=as_of)
        .returning(STAYS.c.patient_id)
    )
    return Refresh(definition.key, entered_ids, sorted(exited))


async def member_count(session: AsyncSession, key: str) -> int:
    """How many patients have an open stay in the segment."""
    counted = await session.scalar(
        select(func.count()).where(STAYS.c.segment_key == key, STAYS.c.exited_at.is_(None))
    )
    return int(counted or 0)


async def current_members(session: AsyncSession, key: str) -> Sequence[str]:
    """The patients with an open stay in the segment, by id."""
    rows = await session.scalars(
        select(STAYS.c.patient_id)
        .where(STAYS.c.segment_key == key, STAYS.c.exited_at.is_(None))
        .order_by(STAYS.c.patient_id)
    )
    return rows.all()


async def stays_of_patient(session: AsyncSession, patient_id: str) -> Sequence[SegmentMembership]:
    """Every stay of a patient in any segment, newest first."""
    rows = await session.scalars(
        select(SegmentMembership)
        .where(SegmentMembership.patient_id == patient_id)
        .order_by(SegmentMembership.entered_at.desc(), SegmentMembership.id.desc())
    )
    return rows.all()
