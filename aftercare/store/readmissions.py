"""Index discharges and their 30-day readmissions, read from the encounters themselves (not from TCM
episodes), so the readmission report answers for any period, before TCM began included.

An index discharge is a `finished` inpatient Encounter (class IMP, ACUTE, NONAC or OBSENC) with an
admission and a discharge time; its readmission is the first inpatient stay of the same patient (not
cancelled or entered in error) admitted after the discharge and within 30 days of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from aftercare.risk.discharges import INPATIENT_CLASSES
from aftercare.tcm.progress import READMISSION_DAYS, Event
from models.risk_tables import RiskScore, TcmEpisode
from models.tables import ClinicalEncounter

NOT_A_STAY = ("cancelled", "entered-in-error")


@dataclass(frozen=True)
class IndexDischarge:
    """A discharge of the period, its LACE score when scored, and its 30-day readmission (None: none)."""

    encounter_id: str
    patient_id: str
    discharged_at: datetime
    lace: int | None
    readmission: Event | None


async def index_discharges(session: AsyncSession, start: datetime, end: datetime) -> list[IndexDischarge]:
    """The inpatient discharges in `[start, end)`, the earliest first, each with its readmission; one
    statement (the readmission a lateral subquery on the patient's encounters)."""
    stay = aliased(ClinicalEncounter)
    again = aliased(ClinicalEncounter)
    readmission = (
        select(again.resource_id, again.start_at)
        .where(
            again.patient_id == stay.patient_id,
            again.class_code.in_(sorted(INPATIENT_CLASSES)),
            func.coalesce(again.status, "").not_in(NOT_A_STAY),
            again.start_at > stay.end_at,
            again.start_at <= stay.end_at + timedelta(days=READMISSION_DAYS),
        )
        .order_by(again.start_at, again.resource_id)
        .limit(1)
        .lateral()
    )
    rows = await session.execute(
        select(
            stay.resource_id,
            stay.patient_id,
            stay.end_at,
            RiskScore.value,
            readmission.c.resource_id,
            readmission.c.start_at,
        )
        .select_from(stay)
        .outerjoin(readmission, true())
        .outerjoin(RiskScore, and_(RiskScore.encounter_id == stay.resource_id, RiskScore.score == "lace"))
        .where(
            stay.class_code.in_(sorted(INPATIENT_CLASSES)),
            stay.status == "finished",
            stay.start_at.is_not(None),
            stay.end_at >= start,
            stay.end_at < end,
        )
        .order_by(stay.end_at, stay.resource_id)
    )
    return [
        IndexDischarge(
            encounter_id=encounter_id,
            patient_id=patient_id,
            discharged_at=discharged_at,
            lace=lace,
            readmission=Event(readmitted_at, f"Encounter/{readmitted_id}") if readmitted_id else None,
        )
        for encounter_id, patient_id, discharged_at, lace, readmitted_id, readmitted_at in rows
    ]


async def episodes_of(session: AsyncSession, encounter_ids: Sequence[str]) -> dict[str, TcmEpisode]:
    """The TCM episodes of these discharges, by encounter (discharges without one are left out)."""
    if not encounter_ids:
        return {}
    rows = await session.scalars(select(TcmEpisode).where(TcmEpisode.encounter_id.in_(list(encounter_ids))))
    return {episode.encounter_id: episode for episode in rows}
