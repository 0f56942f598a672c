"""A person's timeline: clinical events, messages and journey enrollments merged, newest first.

One bounded query per source (each takes at most `limit` rows), merged in memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    ClinicalAppointment,
    ClinicalCondition,
    ClinicalEncounter,
    ClinicalProcedure,
    Enrollment,
    Message,
)


@dataclass(frozen=True)
class Event:
    """One timeline item; `ref` is the resource, message or enrollment id."""

    at: datetime
    kind: str
    title: str | None
    status: str | None
    ref: str
    patient_id: str


async def timeline(session: AsyncSession, records: Sequence[str], *, limit: int = 50) -> list[Event]:
    """The latest `limit` events of these patient records (a person's), newest first."""
    if limit <= 0:
        return []
    sources: list[tuple[str, Select[Any]]] = [
        (
            "encounter",
            select(
                ClinicalEncounter.start_at,
                ClinicalEncounter.display,
                ClinicalEncounter.status,
                ClinicalEncounter.resource_id,
                ClinicalEncounter.patient_id,
            ).where(ClinicalEncounter.patient_id.in_(records), ClinicalEncounter.start_at.is_not(None)),
        ),
        (
            "condition",
            select(
                ClinicalCondition.onset_at,
                ClinicalCondition.display,
                ClinicalCondition.status,
                ClinicalCondition.resource_id,
                ClinicalCondition.patient_id,
            ).where(ClinicalCondition.patient_id.in_(records), ClinicalCondition.onset_at.is_not(None)),
        ),
        (
            "procedure",
            select(
                ClinicalProcedure.performed_at,
                ClinicalProcedure.display,
                ClinicalProcedure.status,
                ClinicalProcedure.resource_id,
                ClinicalProcedure.patient_id,
            ).where(ClinicalProcedure.patient_id.in_(records), ClinicalProcedure.performed_at.is_not(None)),
        ),
        (
            "appointment",
            select(
                ClinicalAppointment.start_at,
                ClinicalAppointment.display,
                ClinicalAppointment.status,
                ClinicalAppointment.resource_id,
                ClinicalAppointment.patient_id,
            ).where(ClinicalAppointment.patient_id.in_(records), ClinicalAppointment.start_at.is_not(None)),
        ),
        (
            "message",
            select(
                func.coalesce(Message.delivered_at, Message.sent_at, Message.created_at),
                Message.channel,
                Message.status,
                Message.id,
                Message.patient_id,
            ).where(Message.patient_id.in_(records)),
        ),
        (
            "enrollment.started",
            select(
                Enrollment.started_at,
                Enrollment.journey_key,
                Enrollment.status,
                Enrollment.id,
                Enrollment.patient_id,
            ).where(Enrollment.patient_id.in_(records)),
        ),
        (
            "enrollment.finished",
            select(
                Enrollment.ended_at,
                Enrollment.journey_key,
                Enrollment.outcome,
                Enrollment.id,
                Enrollment.patient_id,
            ).where(Enrollment.patient_id.in_(records), Enrollment.ended_at.is_not(None)),
        ),
    ]
    events: list[Event] = []
    for kind, query in sources:
        at = query.selected_columns[0]
        rows = await session.execute(query.order_by(at.desc()).limit(limit))
        events.extend(
            Event(at=row[0], kind=kind, title=row[1], status=row[2], ref=row[3], patient_id=row[4])
            for row in rows
            if row[0] is not None
        )
    return heapq.nlargest(limit, events, key=lambda event: (event.at, event.kind, event.ref))
