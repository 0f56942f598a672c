"""The FHIR patient store: resources by type, id and version; a version is stored once.

Versions come from `meta.versionId`; a resource without one (Synthea's) is versioned by a hash of its
content, so the same content twice is the same version and a changed resource is a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, bindparam, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.constant_insert import constant_insert
from aftercare.fhir.instants import last_updated_of
from aftercare.fhir.patient_profile import profile_from_patient
from aftercare.fhir.references import patient_id_of
from aftercare.store.derived import record_derived
from aftercare.store.facilities import place_patients
from models.tables import FhirResource, FhirResourceVersion, Patient, table_of
from models.temporal import FhirResourceRef

_CHUNK = 1000
Interaction = Literal["create", "update"]


@dataclass(frozen=True)
class StoredVersion:
    """A resource version that may fire journeys: new, or stored before its triggers were dispatched."""

    ref: FhirResourceRef
    interaction: Interaction
    patient_id: str | None
    content: dict[str, Any]


@dataclass
class StoreResult:
    """What a write did: new versions by type, versions already stored, and versions awaiting triggers."""

    imported: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    pending_triggers: list[StoredVersion] = field(default_factory=list)


def version_id_of(resource: dict[str, Any]) -> str:
    """`meta.versionId`, or a content hash for resources that carry none."""
    meta = resource.get("meta") or {}
    version = meta.get("versionId")
    if isinstance(version, str) and version:
        return version
    stripped = {key: value for key, value in resource.items() if key != "meta"}
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "h" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


async def store_resources(
    session: AsyncSession,
    resources: Iterable[dict[str, Any]],
    *,
    source: str,
    phone_region: str,
    fire_triggers: bool = True,
    identity_rules: Sequence[str] | None = None,
) -> StoreResult:
    """Store validated resources; keep current versions, patient profiles and patient links up to date.

    `pending_triggers` holds the versions that may fire journeys: new ones, and ones stored before
    that may fire (a retried request re-evaluates them; enrollment trigger keys keep that idempotent).
    With `fire_triggers` false new versions are marked so that they never fire. Clinical facts and
    patient identities follow the versions that became current (`record_derived`, with `identity_rules`
    from `Settings.identity_rules`; the defaults when None).
    """
    result = StoreResult()
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for resource in resources:
        key = (resource["resourceType"], resource["id"], version_id_of(resource))
        rows.setdefault(
            key,
            {
                "resource_type": key[0],
                "resource_id": key[1],
                "version_id": key[2],
                "content": resource,
                "patient_id": patient_id_of(resource),
                "last_updated": last_updated_of(resource),
                "source": source,
            },
        )
    if not rows:
        return result

    known = await _current_versions(session, {(row[0], row[1]) for row in rows})
    seen_in_batch: set[tuple[str, str]] = set()
    for row in rows.values():
        identity = (row["resource_type"], row["resource_id"])
        row["interaction"] = "update" if identity in known or identity in seen_in_batch else "create"
        seen_in_batch.add(identity)
        row["fires_triggers"] = fire_triggers

    new_keys = await _insert_versions(session, list(rows.values()))
    for key in rows:
        (result.imported if key in new_keys else result.unchanged)[key[0]] += 1
    refirable = (
        await _refirable(session, [key for key in rows if key not in new_keys]) if fire_triggers else {}
    )
    if fire_triggers:
        result.pending_triggers = [
            StoredVersion(
                ref=FhirResourceRef(resource_type=key[0], resource_id=key[1], version_id=key[2]),
                interaction=refirable.get(key, rows[key]["interaction"]),
                patient_id=rows[key]["patient_id"],
                content=rows[key]["content"],
            )
            for key in rows
            if key in new_keys or key in refirable
        ]
    new_rows = [rows[key] for key in rows if key in new_keys]
    became_current = await _upsert_current(session, new_rows)
    patients = [
        profile_from_patient(rows[key]["content"], key[2], phone_region).as_row()
        for key in rows
        if key[0] == "Patient" and key in became_current
    ]
    # Placed first: a caller limited to some facilities may only write patients of theirs.
    await place_patients(
        session, [rows[key]["content"] for key in rows if key in became_current], source=source
    )
    await _upsert_patients(session, patients)
    await record_derived(
        session,
        [rows[key]["content"] for key in rows if key in became_current],
        phone_region=phone_region,
        identity_rules=identity_rules,
        first_seen={(key[0], key[1]) for key in rows} - known,
    )
    return result


_CURRENT_OF = select(FhirResource.resource_type, FhirResource.resource_id).where(
    tuple_(FhirResource.resource_type, FhirResource.resource_id).in_(bindparam("identities", expanding=True))
)


async def _current_versions(session: AsyncSession, identities: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    items = sorted(identities)
    connection = await session.connection()
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        found.update((row[0], row[1]) for row in await connection.execute(_CURRENT_OF, {"identities": chunk}))
    return found


_INSERT_VERSION = constant_insert(
    insert(table_of(FhirResourceVersion))
    .on_conflict_do_nothing()
    .returning(
        FhirResourceVersion.resource_type, FhirResourceVersion.resource_id, FhirResourceVersion.version_id
    )
)


async def _insert_versions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    inserted: set[tuple[str, str, str]] = set()
    connection = await session.connection()
    for start in range(0, len(rows), _CHUNK):
        result = await connection.execute(_INSERT_VERSION, rows[start : start + _CHUNK])
        inserted.update((row[0], row[1], row[2]) for row in result)
    return inserted


async def _refirable(
    session: AsyncSession, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """Stored versions that may fire journeys, with the interaction they were stored as."""
    found: dict[tuple[str, str, str], str] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        query = select(
            FhirResourceVersion.resource_type,
            FhirResourceVersion.resource_id,
            FhirResourceVersion.version_id,
            FhirResourceVersion.interaction,
        ).where(
            tuple_(
                FhirResourceVersion.resource_type,
                FhirResourceVersion.resource_id,
                FhirResourceVersion.version_id,
            ).in_(chunk),
            FhirResourceVersion.fires_triggers.is_(True),
        )
        found.update({(row[0], row[1], row[2]): row[3] for row in await session.execute(query)})
    return found


_CURRENT = table_of(FhirResource)
_UPSERT_CURRENT_INSERT = insert(_CURRENT)
_UPSERT_CURRENT = constant_insert(
    _UPSERT_CURRENT_INSERT.on_conflict_do_update(
        index_elements=[_CURRENT.c.resource_type, _CURRENT.c.resource_id],
        set_={
            "version_id": _UPSERT_CURRENT_INSERT.excluded.version_id,
            "content": _UPSERT_CURRENT_INSERT.excluded.content,
            "patient_id": _UPSERT_CURRENT_INSERT.excluded.patient_id,
            "last_updated": _UPSERT_CURRENT_INSERT.excluded.last_updated,
            "updated_at": func.now(),
        },
        where=or_(
            _CURRENT.c.last_updated.is_(None),
            _UPSERT_CURRENT_INSERT.excluded.last_updated.is_(None),
            _UPSERT_CURRENT_INSERT.excluded.last_updated >= _CURRENT.c.last_updated,
        ),
    ).returning(_CURRENT.c.resource_type, _CURRENT.c.resource_id, _CURRENT.c.version_id)
)

_PATIENTS = table_of(Patient)
_UPSERT_PATIENT_INSERT = insert(_PATIENTS)
_UPSERT_PATIENT = constant_insert(
    _UPSERT_PATIENT_INSERT.on_conflict_do_update(
        index_elements=[_PATIENTS.c.id],
        set_={
            **{
                column.name: _UPSERT_PATIENT_INSERT.excluded[column.name]
                for column in _PATIENTS.columns
                if column.name not in ("id", "updated_at", "facility_bits")  # bits: kept by triggers
            },
            "updated_at": func.now(),
        },
    )
)


async def _upsert_current(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Make new versions current unless a later `meta.lastUpdated` is already current."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest[(row["resource_type"], row["resource_id"])] = row
    fields = ("resource_type", "resource_id", "version_id", "content", "patient_id", "last_updated")
    values = [{field: row[field] for field in fields} for row in latest.values()]
    current: set[tuple[str, str, str]] = set()
    connection = await session.connection()
    for start in range(0, len(values), _CHUNK):
        result = await connection.execute(_UPSERT_CURRENT, values[start : start + _CHUNK])
        current.update((row[0], row[1], row[2]) for row in result)
    return current


async def _upsert_patients(session: AsyncSession, profiles: list[dict[str, Any]]) -> None:
    for start in range(0, len(profiles), _CHUNK):
        await session.execute(_UPSERT_PATIENT, profiles[start : start + _CHUNK])


async def load_version(session: AsyncSession, ref: FhirResourceRef) -> dict[str, Any] | None:
    """The content of one stored version."""
    content: dict[str, Any] | None = await session.scalar(
        select(FhirResourceVersion.content).where(
            and_(
                FhirResourceVersion.resource_type == ref.resource_type,
                FhirResourceVersion.resource_id == ref.resource_id,
                FhirResourceVersion.version_id == ref.version_id,
            )
        )
    )
    return content


async def load_current(session: AsyncSession, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    """The current content of a resource."""
    content: dict[str, Any] | None = await session.scalar(
        select(FhirResource.content).where(
            FhirResource.resource_type == resource_type, FhirResource.resource_id == resource_id
        )
    )
    return content


async def received_at(session: AsyncSession, ref: FhirResourceRef) -> datetime | None:
    """When this version first reached Aftercare."""
    value: datetime | None = await session.scalar(
        select(FhirResourceVersion.received_at).where(
            FhirResourceVersion.resource_type == ref.resource_type,
            FhirResourceVersion.resource_id == ref.resource_id,
            FhirResourceVersion.version_id == ref.version_id,
        )
    )
    return value


async def newest_of_type(session: AsyncSession, patient_id: str, resource_type: str) -> FhirResource | None:
    """The patient's most recently updated current resource of this type, if any."""
    found: FhirResource | None = await session.scalar(
        select(FhirResource)
        .where(FhirResource.patient_id == patient_id, FhirResource.resource_type == resource_type)
        .order_by(FhirResource.last_updated.desc().nulls_last(), FhirResource.updated_at.desc())
        .limit(1)
    )
    return found
