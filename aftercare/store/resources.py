"""The FHIR patient store: resources by type, id and version; a version is stored once.

Versions come from `meta.versionId`; a resource without one (Synthea's) is versioned by a hash of its
content, so the same content twice is the same version and a changed resource is a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.array_rows import array_insert
from aftercare.fhir.instants import last_updated_of
from aftercare.fhir.patient_profile import PatientProfile, profile_from_patient
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
    return _version_and_text(resource)[0]


def _version_and_text(resource: dict[str, Any]) -> tuple[str, str | None]:
    """The version id, and the resource's JSON text when making the id encoded all of it (a resource
    without `meta`: its canonical text is also the text to store)."""
    meta = resource.get("meta") or {}
    version = meta.get("versionId")
    if isinstance(version, str) and version:
        return version, None
    stripped = {key: value for key, value in resource.items() if key != "meta"}
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "h" + hashlib.sha256(canonical.encode()).hexdigest()[:24], (
        canonical if "meta" not in resource else None
    )


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
        version, encoded = _version_and_text(resource)
        key = (resource["resourceType"], resource["id"], version)
        if key in rows:
            continue
        rows[key] = {
            "resource_type": key[0],
            "resource_id": key[1],
            "version_id": key[2],
            "content": resource,
            "content_json": encoded if encoded is not None else json.dumps(resource),
            "patient_id": patient_id_of(resource),
            "last_updated": last_updated_of(resource),
            "source": source,
        }
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


# One statement text whatever the batch: the (type, id) pairs travel as two arrays.
_CURRENT_OF = text(
    """
    SELECT r.resource_type, r.resource_id FROM fhir_resources r
    JOIN unnest(CAST(:types AS VARCHAR[]), CAST(:ids AS VARCHAR[])) AS k(resource_type, resource_id)
        ON r.resource_type = k.resource_type AND r.resource_id = k.resource_id
    """
)


async def _current_versions(session: AsyncSession, identities: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    items = sorted(identities)
    connection = await session.connection()
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        rows = await connection.execute(
            _CURRENT_OF, {"types": [item[0] for item in chunk], "ids": [item[1] for item in chunk]}
        )
        found.update((row[0], row[1]) for row in rows)
    return found


_VERSION_COLUMNS = (
    "resource_type",
    "resource_id",
    "version_id",
    "content",
    "patient_id",
    "last_updated",
    "source",
    "interaction",
    "fires_triggers",
)
_INSERT_VERSION = array_insert(
    table_of(FhirResourceVersion),
    _VERSION_COLUMNS,
    "ON CONFLICT DO NOTHING RETURNING resource_type, resource_id, version_id",
)


async def _insert_versions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    inserted: set[tuple[str, str, str]] = set()
    connection = await session.connection()
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        result = await connection.execute(
            _INSERT_VERSION.statement,
            _INSERT_VERSION.parameters(chunk, {"content": [row["content_json"] for row in chunk]}),
        )
        inserted.update((row[0], row[1], row[2]) for row in result)
    return inserted


async def _refirable(
    session: AsyncSession, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str]:
    """Stored versions that may fire journeys, with the interaction they were stored as."""
    found: dict[tuple[str, str, str], str] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        rows = await session.execute(
            _REFIRABLE,
            {
                "types": [key[0] for key in chunk],
                "ids": [key[1] for key in chunk],
                "versions": [key[2] for key in chunk],
            },
        )
        found.update({(row[0], row[1], row[2]): row[3] for row in rows})
    return found


_REFIRABLE = text(
    """
    SELECT v.resource_type, v.resource_id, v.version_id, v.interaction FROM fhir_resource_versions v
    JOIN unnest(
        CAST(:types AS VARCHAR[]), CAST(:ids AS VARCHAR[]), CAST(:versions AS VARCHAR[])
    ) AS k(resource_type, resource_id, version_id)
        ON v.resource_type = k.resource_type AND v.resource_id = k.resource_id
        AND v.version_id = k.version_id
    WHERE v.fires_triggers IS true
    """
)


_CURRENT = table_of(FhirResource)
_CURRENT_COLUMNS = ("resource_type", "resource_id", "version_id", "content", "patient_id", "last_updated")
_UPSERT_CURRENT = array_insert(
    _CURRENT,
    _CURRENT_COLUMNS,
    """
    ON CONFLICT (resource_type, resource_id) DO UPDATE SET
        version_id = excluded.version_id, content = excluded.content, patient_id = excluded.patient_id,
        last_updated = excluded.last_updated, updated_at = now()
    WHERE c.last_updated IS NULL OR excluded.last_updated IS NULL
        OR excluded.last_updated >= c.last_updated
    RETURNING c.resource_type, c.resource_id, c.version_id
    """,
    alias="c",
)

_PATIENTS = table_of(Patient)
_PATIENT_COLUMNS = tuple(column.name for column in fields(PatientProfile))
_UPSERT_PATIENT = array_insert(
    _PATIENTS,
    _PATIENT_COLUMNS,
    # facility_bits is not set: the triggers of patient_facilities keep it
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _PATIENT_COLUMNS if name != "id")
    + ", updated_at = now()",
)


async def _upsert_current(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Make new versions current unless a later `meta.lastUpdated` is already current."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest[(row["resource_type"], row["resource_id"])] = row
    values = list(latest.values())
    current: set[tuple[str, str, str]] = set()
    connection = await session.connection()
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        result = await connection.execute(
            _UPSERT_CURRENT.statement,
            _UPSERT_CURRENT.parameters(chunk, {"content": [row["content_json"] for row in chunk]}),
        )
        current.update((row[0], row[1], row[2]) for row in result)
    return current


async def _upsert_patients(session: AsyncSession, profiles: list[dict[str, Any]]) -> None:
    for start in range(0, len(profiles), _CHUNK):
        chunk = profiles[start : start + _CHUNK]
        await session.execute(_UPSERT_PATIENT.statement, _UPSERT_PATIENT.parameters(chunk))


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
