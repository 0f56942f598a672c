"""A campaign run's audience: the segment's members frozen at launch (one `INSERT ... SELECT`), each
with an A/B variant and an ordinal, grouped by time zone so a run pages through one zone's patients
as one contiguous range of ordinals."""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.voice import PRIMARY_ORDER
from aftercare.segments.compiler import PATIENTS, segment_condition
from aftercare.segments.evaluate import context_for, tune
from aftercare.store.facilities import placed_in
from models.campaign import CampaignDefinition, CampaignVariant
from models.campaign_tables import CampaignRecipient
from models.facility_tables import Facility, PatientFacility
from models.segment import SegmentDefinition
from models.tables import table_of

RECIPIENTS = table_of(CampaignRecipient)
PLACED = table_of(PatientFacility)
FACILITIES = table_of(Facility)
# A patient's place among the variants: one of this many buckets, from a hash of the campaign and id.
BUCKETS = 10_000
# Recipient states that are still to be sent (or to be sent again).
OPEN_STATES = ("pending", "deferred")


@dataclass(frozen=True)
class ZoneRange:
    """The ordinals of one time zone's recipients."""

    zone: str
    first: int
    last: int
    count: int


def rows_touched(result: Result[Any]) -> int:
    """How many rows a DML statement touched."""
    return int(typing.cast(CursorResult[Any], result).rowcount or 0)


def variant_seed(campaign: CampaignDefinition) -> str:
    """What a patient's variant is hashed with: the same campaign version always splits alike."""
    return f"{campaign.key}:{campaign.version}:"


def bucket_of(seed: str, patient_id: str) -> int:
    """The bucket the SQL assigns (for checking it, and for one patient)."""
    return int(hashlib.md5((seed + patient_id).encode(), usedforsecurity=False).hexdigest()[:8], 16) % BUCKETS


def thresholds(variants: Sequence[CampaignVariant]) -> list[tuple[int, str]]:
    """Each variant's upper bucket bound, in order: its share of the buckets follows its weight."""
    total = sum(variant.weight for variant in variants)
    bounds, running = [], 0.0
    for variant in variants:
        running += variant.weight
        bounds.append((round(BUCKETS * running / total), variant.key))
    return bounds


def variant_for(campaign: CampaignDefinition, patient_id: str) -> str:
    """The variant a patient gets (the same rule as the freeze's SQL)."""
    bucket = bucket_of(variant_seed(campaign), patient_id)
    bounds = thresholds(campaign.variant_list())
    return next((key for bound, key in bounds if bucket < bound), bounds[-1][1])


def _variant_column(campaign: CampaignDefinition) -> ColumnElement[str]:
    bounds = thresholds(campaign.variant_list())
    if len(bounds) == 1:
        return literal(bounds[0][1])
    digest = func.substr(func.md5(literal(variant_seed(campaign)).concat(PATIENTS.c.id)), 1, 8)
    bucket = cast(cast(literal("x").concat(digest), BIT(32)), BigInteger) % BUCKETS
    return case(*((bucket < bound, key) for bound, key in bounds[:-1]), else_=literal(bounds[-1][1]))


def _facility_zone() -> ColumnElement[str]:
    """The time zone of the facility a patient hears from (see `aftercare/facilities/voice.py`)."""
    return (
        select(FACILITIES.c.timezone)
        .select_from(PLACED.join(FACILITIES, FACILITIES.c.key == PLACED.c.facility))
        .where(PLACED.c.patient_id == PATIENTS.c.id)
        .order_by(*PRIMARY_ORDER)
        .limit(1)
        .scalar_subquery()
    )


async def freeze_audience(
    session: AsyncSession,
    run_id: str,
    campaign: CampaignDefinition,
    segment: SegmentDefinition,
    as_of: datetime,
    hospital_timezone: str,
    facilities: Collection[str] | None = None,
) -> int:
    """Insert the segment's members at `as_of` as the run's recipients (in the caller's transaction),
    only patients of `facilities` when given; returns how many."""
    context = await context_for(session, segment, as_of)
    await tune(session)
    # The patient's own zone, else their facility's, else the install's.
    zone = func.coalesce(func.nullif(PATIENTS.c.timezone, ""), _facility_zone(), hospital_timezone)
    condition = segment_condition(segment, context)
    if facilities is not None:
        condition = and_(condition, PATIENTS.c.id.in_(placed_in(facilities)))
    members = (
        select(PATIENTS.c.id, zone.label("zone"), _variant_column(campaign).label("variant"))
        .where(condition)
        .subquery("members")
    )
    ordinal = func.row_number().over(order_by=(members.c.zone, members.c.id))
    await session.execute(
        RECIPIENTS.insert().from_select(
            ["run_id", "ordinal", "patient_id", "zone", "variant"],
            select(literal(run_id), ordinal, members.c.id, members.c.zone, members.c.variant),
        )
    )
    counted = await session.scalar(select(func.count()).where(RECIPIENTS.c.run_id == run_id))
    return int(counted or 0)


async def zone_ranges(session: AsyncSession, run_id: str) -> list[ZoneRange]:
    """Each time zone's ordinals, in ordinal order."""
    rows = await session.execute(
        select(
            RECIPIENTS.c.zone,
            func.min(RECIPIENTS.c.ordinal),
            func.max(RECIPIENTS.c.ordinal),
            func.count(),
        )
        .where(RECIPIENTS.c.run_id == run_id)
        .group_by(RECIPIENTS.c.zone)
        .order_by(func.min(RECIPIENTS.c.ordinal))
    )
    return [ZoneRange(zone, first, last, count) for zone, first, last, count in rows]


async def close_open_recipients(session: AsyncSession, run_id: str, state: str, reason: str) -> int:
    """Mark every recipient still pending or deferred (`expired` at the end of a run, `cancelled` when
    it is cancelled); returns how many."""
    changed = await session.execute(
        update(RECIPIENTS)
        .where(and_(RECIPIENTS.c.run_id == run_id, RECIPIENTS.c.state.in_(OPEN_STATES)))
        .values(state=state, reason=reason, decided_at=func.now())
    )
    return rows_touched(changed)
