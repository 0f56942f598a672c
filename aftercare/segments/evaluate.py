"""Evaluating segments: members, a preview with each criterion's count, and a patient's segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, false, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.scope import explicit_scope
from aftercare.segments.compiler import (
    PATIENTS,
    CompileContext,
    alive,
    compile_criterion,
    members_query,
    segment_condition,
)
from aftercare.segments.explain import nodes
from aftercare.store.facilities import FacilityReach, facility_reach, list_facilities, placed_in, subtree
from aftercare.store.segments import referenced_definitions
from models.segment import SegmentDefinition


@dataclass(frozen=True)
class CriterionCount:
    """How many patients one criterion holds for, on its own."""

    path: str
    description: str
    count: int


@dataclass(frozen=True)
class Preview:
    """A segment's size, a sample of members, and each criterion's count."""

    count: int
    sample: list[str]
    criteria: list[CriterionCount]


# A segment query is planned once and runs in about a second: compiling it to machine code (JIT) would
# cost more than it saves, and hashing a set of patient ids needs more than the default 4 MB.
_TUNING = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")


async def tune(session: AsyncSession) -> None:
    """Settings for segment queries, for the rest of the session's transaction."""
    for statement in _TUNING:
        await session.execute(text(statement))


async def context_for(
    session: AsyncSession, definition: SegmentDefinition, as_of: datetime
) -> CompileContext:
    """The compile context: the evaluation time, the segments referred to, and the subtrees of the
    facilities that own any of them."""
    segments = await referenced_definitions(session, definition)
    owners = {owned.facility for owned in (definition, *segments.values()) if owned.facility is not None}
    tree = await list_facilities(session) if owners else []
    subtrees = {owner: tuple(sorted(subtree(tree, [owner]))) for owner in owners}
    return CompileContext(as_of=as_of, segments=segments, subtrees=subtrees)


async def limited_to(session: AsyncSession, query: Select[Any], reach: list[str] | None) -> Select[Any]:
    """The query limited to patients of the facilities a scoped caller reaches (see `explicit_scope`).

    A statement run with the policies lifted reads `patients` alone: every criterion is a condition on
    the patient row (facts only in sub-queries that can narrow it), so filtering that row by the
    caller's facilities bounds all it returns, ids, samples and counts alike. Refused otherwise. The
    filter is the row's own `facility_bits` against the facilities' bits (an int8 AND per row), with
    a look-up in `patient_facilities` for facilities without a bit."""
    if query.get_final_froms() != [PATIENTS]:
        raise ValueError("a segment statement run with row-level security lifted reads only patients")
    return query if reach is None else query.where(placed(await facility_reach(session, reach)))


def placed(reach: FacilityReach) -> ColumnElement[bool]:
    """Whether a patient row is placed in a facility of `reach`."""
    conditions: list[ColumnElement[bool]] = []
    if reach.mask:
        conditions.append(PATIENTS.c.facility_bits.op("&")(literal(reach.mask, BigInteger)) != 0)
    if reach.overflow:
        conditions.append(PATIENTS.c.id.in_(placed_in(reach.overflow)))
    return or_(*conditions) if conditions else false()


async def members(session: AsyncSession, definition: SegmentDefinition, as_of: datetime) -> list[str]:
    """Every member's patient id, sorted (one query); a caller limited to some facilities gets theirs."""
    context = await context_for(session, definition, as_of)
    await tune(session)
    async with explicit_scope(session) as reach:
        query = await limited_to(session, members_query(definition, context), reach)
        return list(await session.scalars(query.order_by(PATIENTS.c.id)))


async def preview(
    session: AsyncSession, definition: SegmentDefinition, as_of: datetime, sample_size: int = 20
) -> Preview:
    """The count, the first members by id, and each criterion's count among the eligible patients
    (alive, unless the segment includes the deceased)."""
    context = await context_for(session, definition, as_of)
    explained = list(nodes(definition.criteria))
    counts = [
        func.count().filter(compile_criterion(node.criterion, context)).label(f"c{index}")
        for index, node in enumerate(explained)
    ]
    query = select(func.count().filter(segment_condition(definition, context)), *counts).select_from(PATIENTS)
    if not definition.include_deceased:
        query = query.where(alive())
    await tune(session)
    async with explicit_scope(session) as reach:
        row = (await session.execute(await limited_to(session, query, reach))).one()
        sampled = await limited_to(session, members_query(definition, context), reach)
        sample = list(await session.scalars(sampled.order_by(PATIENTS.c.id).limit(sample_size)))
    return Preview(
        count=row[0],
        sample=sample,
        criteria=[
            CriterionCount(node.path, node.description, row[index + 1])
            for index, node in enumerate(explained)
        ],
    )


async def segments_of_patient(
    session: AsyncSession, patient_id: str, definitions: Sequence[SegmentDefinition], as_of: datetime
) -> list[str]:
    """The keys of the segments the patient is in (one query, each sub-query limited to the patient)."""
    if not definitions:
        return []
    columns = []
    for index, definition in enumerate(definitions):
        context = await context_for(session, definition, as_of)
        restricted = replace(context, patient_id=patient_id)
        columns.append(func.coalesce(segment_condition(definition, restricted), False).label(f"s{index}"))
    await tune(session)
    async with explicit_scope(session) as reach:
        query = await limited_to(session, select(*columns).where(PATIENTS.c.id == patient_id), reach)
        row = (await session.execute(query)).one_or_none()
    if row is None:
        return []
    return [definition.key for definition, member in zip(definitions, row, strict=True) if member]
