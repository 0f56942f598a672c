"""Patient profiles."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Patient


async def get_patient(session: AsyncSession, patient_id: str) -> Patient | None:
    """The profile, or None for a patient the store has never seen."""
    return await session.get(Patient, patient_id)


async def existing_patient_ids(session: AsyncSession, patient_ids: Iterable[str]) -> set[str]:
    """Which of these patients the store knows."""
    wanted = set(patient_ids)
    if not wanted:
        return set()
    rows = await session.scalars(select(Patient.id).where(Patient.id.in_(wanted)))
    return set(rows)
