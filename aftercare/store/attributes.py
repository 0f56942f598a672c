"""Patient attributes: named values journeys keep about a patient."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import PatientAttribute, table_of

_ATTRIBUTES = table_of(PatientAttribute)
_UPSERT_INSERT = insert(_ATTRIBUTES)
_UPSERT = _UPSERT_INSERT.on_conflict_do_update(
    index_elements=[_ATTRIBUTES.c.patient_id, _ATTRIBUTES.c.name],
    set_={
        "value": _UPSERT_INSERT.excluded.value,
        "source": _UPSERT_INSERT.excluded.source,
        "updated_at": func.now(),
    },
)


async def set_attributes(session: AsyncSession, patient_id: str, values: dict[str, Any], source: str) -> None:
    """Write attributes (last write wins)."""
    if values:
        await session.execute(
            _UPSERT,
            [
                {"patient_id": patient_id, "name": name, "value": value, "source": source}
                for name, value in values.items()
            ],
        )


async def attributes_of(session: AsyncSession, patient_id: str) -> dict[str, Any]:
    """All of a patient's attributes."""
    rows = await session.execute(
        select(PatientAttribute.name, PatientAttribute.value).where(PatientAttribute.patient_id == patient_id)
    )
    return {name: value for name, value in rows}


async def attribute_of(session: AsyncSession, patient_id: str, name: str) -> Any:
    """One attribute's value, or None."""
    return await session.scalar(
        select(PatientAttribute.value).where(
            PatientAttribute.patient_id == patient_id, PatientAttribute.name == name
        )
    )
