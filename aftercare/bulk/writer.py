"""Writing one batch of imported resources to the patient store.

Patients, and every resource of an import that fires journeys, go through `store_resources` (profiles,
trigger bookkeeping). Everything else of a silent import takes a bulk path with the same semantics: one
statement inserts the versions from arrays (`unnest`), skipping versions already stored (same type, id
and `meta.versionId` or content hash, so re-importing is idempotent), and makes the new ones current
unless a later `meta.lastUpdated` is. Its new versions never fire journeys (`fires_triggers` false).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir.instants import last_updated_of
from aftercare.fhir.references import patient_id_of
from aftercare.store.derived import record_derived
from aftercare.store.facilities import place_patients
from aftercare.store.resources import StoredVersion, store_resources, version_id_of


@dataclass(frozen=True)
class Item:
    """A resource to write, with its JSON text when it arrived as text (an NDJSON line)."""

    resource: dict[str, Any]
    raw: str | None = None


@dataclass
class BatchWritten:
    """New versions by type, versions already stored by type, and versions that may fire journeys."""

    new: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    pending_triggers: list[StoredVersion] = field(default_factory=list)


_ID_LENGTH = 64
_BULK_WRITE = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:types AS text[]), CAST(:ids AS text[]), CAST(:versions AS text[]),
            ARRAY(
                SELECT value FROM jsonb_array_elements(CAST(:contents AS jsonb)) WITH ORDINALITY
                ORDER BY ordinality
            ),
            CAST(:patients AS text[]), CAST(:updated AS timestamptz[]),
            CAST(:repeated AS boolean[]), CAST(:ordinals AS integer[])
        ) AS b(resource_type, resource_id, version_id, content, patient_id, last_updated, repeated, ordinal)
    ),
    inserted AS (
        INSERT INTO fhir_resource_versions AS v (
            resource_type, resource_id, version_id, content, patient_id, last_updated, source,
            interaction, fires_triggers
        )
        SELECT
            b.resource_type, b.resource_id, b.version_id, b.content, b.patient_id, b.last_updated,
            CAST(:source AS text),
            CASE WHEN b.repeated OR EXISTS (
                SELECT 1 FROM fhir_resources c
                WHERE c.resource_type = b.resource_type AND c.resource_id = b.resource_id
            ) THEN 'update' ELSE 'create' END,
            false
        FROM batch b
        ON CONFLICT DO NOTHING
        RETURNING v.resource_type, v.resource_id, v.version_id, v.content, v.patient_id, v.last_updated
    ),
    latest AS (
        SELECT DISTINCT ON (i.resource_type, i.resource_id) i.*
        FROM inserted i JOIN batch b USING (resource_type, resource_id, version_id)
        ORDER BY i.resource_type, i.resource_id, b.ordinal DESC
    ),
    became_current AS (
        INSERT INTO fhir_resources AS c (
            resource_type, resource_id, version_id, content, patient_id, last_updated
        )
        SELECT resource_type, resource_id, version_id, content, patient_id, last_updated FROM latest
        ON CONFLICT (resource_type, resource_id) DO UPDATE SET
            version_id = excluded.version_id,
            content = excluded.content,
            patient_id = excluded.patient_id,
            last_updated = excluded.last_updated,
            updated_at = now()
        WHERE c.last_updated IS NULL OR excluded.last_updated IS NULL
            OR excluded.last_updated >= c.last_updated
        RETURNING c.resource_type, c.resource_id, c.version_id
    )
    SELECT true AS new, resource_type, resource_id, version_id FROM inserted
    UNION ALL
    SELECT false, resource_type, resource_id, version_id FROM became_current
    """
)


async def write_batch(
    session: AsyncSession, items: list[Item], *, source: str, phone_region: str, fire_triggers: bool
) -> BatchWritten:
    """Store a batch in the session's transaction; versions already stored are left as they are.

    An item's `raw` text must be the JSON of its resource (it is stored as the content)."""
    written = BatchWritten()
    if fire_triggers:
        slow = items
        fast: list[Item] = []
    else:
        slow = [item for item in items if item.resource["resourceType"] == "Patient"]
        fast = [item for item in items if item.resource["resourceType"] != "Patient"]
    if slow:
        stored = await store_resources(
            session,
            [item.resource for item in slow],
            source=source,
            phone_region=phone_region,
            fire_triggers=fire_triggers,
        )
        written.new.update(stored.imported)
        written.unchanged.update(stored.unchanged)
        written.pending_triggers.extend(stored.pending_triggers)
    if fast:
        await _write_fast(session, fast, source, written, phone_region)
    return written


async def _write_fast(
    session: AsyncSession, items: list[Item], source: str, written: BatchWritten, phone_region: str
) -> None:
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    columns: dict[str, list[Any]] = {
        name: [] for name in ("types", "ids", "versions", "contents", "patients", "updated", "repeated")
    }
    for item in items:
        resource = item.resource
        key = (resource["resourceType"], resource["id"], version_id_of(resource))
        if key in by_key:
            continue
        by_key[key] = resource
        columns["types"].append(key[0])
        columns["ids"].append(key[1])
        columns["versions"].append(key[2])
        columns["contents"].append(item.raw.strip() if item.raw is not None else json.dumps(resource))
        patient_id = patient_id_of(resource)
        columns["patients"].append(patient_id if patient_id and len(patient_id) <= _ID_LENGTH else None)
        columns["updated"].append(last_updated_of(resource))
        columns["repeated"].append(key[:2] in seen)
        seen.add(key[:2])
    # The contents travel as one JSON array: a text[] parameter would escape every quote of every line.
    contents = "[" + ",".join(columns.pop("contents")) + "]"
    rows = await session.execute(
        _BULK_WRITE,
        {**columns, "contents": contents, "ordinals": list(range(len(by_key))), "source": source},
    )
    new: set[tuple[str, str, str]] = set()
    current: list[dict[str, Any]] = []
    for is_new, resource_type, resource_id, version_id in rows:
        key = (resource_type, resource_id, version_id)
        if is_new:
            new.add(key)
        else:
            current.append(by_key[key])
    for key in by_key:
        (written.new if key in new else written.unchanged)[key[0]] += 1
    # Patients go through store_resources; what derives from the rest (clinical facts) is recorded here.
    await place_patients(session, current, source=source)  # encounters place theirs in their facilities
    await record_derived(session, current, phone_region=phone_region)
