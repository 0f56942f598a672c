"""Clinical fact tables kept in step with the current FHIR resources: one bulk upsert per table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import String

from aftercare.clinical.facts import COMPONENT_SEPARATOR, FACT_TABLES, REFERENCED_TYPES, facts_of
from aftercare.db.constant_insert import constant_insert
from models.tables import Base, ClinicalObservation, FhirResource

_CHUNK = 2000
_OBSERVATIONS = "clinical_observations"


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _upsert(table: Table) -> Insert:
    statement = insert(table)
    return constant_insert(
        statement.on_conflict_do_update(
            index_elements=[table.c.resource_id],
            set_={c.name: statement.excluded[c.name] for c in table.columns if c.name != "resource_id"},
        )
    )


_UPSERTS = {name: _upsert(_table(name)) for name in set(FACT_TABLES.values())}


async def record_clinical_facts(
    session: AsyncSession,
    resources: Sequence[dict[str, Any]],
    *,
    first_seen: Collection[tuple[str, str]] = (),
) -> None:
    """Upsert the fact rows of these current resources, one statement per table and chunk.

    Resources of other types are ignored; a resource of a kept type that no longer yields a row (it
    lost its patient) has its row removed, and an Observation's component rows follow its components
    (not looked for when the Observation is in `first_seen`, (type, id) pairs with no earlier current
    version, hence no rows).
    """
    references = {
        f"{resource['resourceType']}/{resource['id']}": resource
        for resource in resources
        if resource.get("resourceType") in REFERENCED_TYPES
    }
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    dropped: dict[str, list[str]] = defaultdict(list)
    observation_ids: list[str] = []
    for resource in resources:
        resource_type = resource.get("resourceType")
        table = FACT_TABLES.get(resource_type) if isinstance(resource_type, str) else None
        if table is None:
            continue
        if resource_type == "Observation" and ("Observation", resource["id"]) not in first_seen:
            observation_ids.append(resource["id"])
        facts = facts_of(resource, references)
        if not facts:
            dropped[table].append(resource["id"])
        for fact in facts:
            rows[fact.table][fact.row["resource_id"]] = fact.row
    await _forget_stale_components(session, observation_ids, set(rows[_OBSERVATIONS]))
    connection = await session.connection()  # Core statements: the ORM session's layer adds nothing
    for table, by_id in rows.items():
        values = list(by_id.values())
        for start in range(0, len(values), _CHUNK):
            await connection.execute(_UPSERTS[table], values[start : start + _CHUNK])
    for table, ids in dropped.items():
        facts_table = _table(table)
        await session.execute(delete(facts_table).where(facts_table.c.resource_id.in_(ids)))


async def _forget_stale_components(session: AsyncSession, observation_ids: list[str], keep: set[str]) -> None:
    """Remove component rows of observations seen before that are not among the new rows."""
    if not observation_ids:
        return
    seen = (
        await session.execute(
            select(ClinicalObservation.resource_id, ClinicalObservation.patient_id).where(
                ClinicalObservation.resource_id == func.any(bindparam("ids", type_=ARRAY(String)))
            ),
            {"ids": observation_ids},
        )
    ).all()
    if not seen:
        return
    prefixes = [_like_prefix(row.resource_id) for row in seen]
    statement = delete(ClinicalObservation).where(
        ClinicalObservation.patient_id.in_(sorted({row.patient_id for row in seen})),
        ClinicalObservation.resource_id.like(func.any(bindparam("prefixes", type_=ARRAY(String)))),
    )
    if keep:
        statement = statement.where(
            ClinicalObservation.resource_id != func.all(bindparam("keep", type_=ARRAY(String)))
        )
    await session.execute(statement, {"prefixes": prefixes, "keep": sorted(keep)})


def _like_prefix(resource_id: str) -> str:
    escaped = resource_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}{COMPONENT_SEPARATOR}%"


async def rebuild_clinical_facts(session: AsyncSession, batch_size: int = 1000) -> int:
    """Backfill the fact tables from the current resources, in batches ordered by type and id; returns
    how many resources were read. Rows are upserted, so running it again is harmless."""
    kept = sorted({*FACT_TABLES, *REFERENCED_TYPES})
    after: tuple[str, str] = ("", "")
    read = 0
    while True:
        batch = (
            await session.execute(
                select(FhirResource.resource_type, FhirResource.resource_id, FhirResource.content)
                .where(
                    FhirResource.resource_type.in_(kept),
                    tuple_(FhirResource.resource_type, FhirResource.resource_id) > after,
                )
                .order_by(FhirResource.resource_type, FhirResource.resource_id)
                .limit(batch_size)
            )
        ).all()
        if not batch:
            return read
        await record_clinical_facts(session, [row.content for row in batch])
        read += len(batch)
        after = (batch[-1].resource_type, batch[-1].resource_id)
