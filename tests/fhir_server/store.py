"""The test server's resources: every version of every resource in memory, indexed by type and by the
patient each resource is about, with `meta.versionId` and a strictly increasing `meta.lastUpdated`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aftercare.fhir.bundles import entries_of, parse_ndjson

# Top-level elements that name the patient a resource is about (the Patient compartment, simplified).
PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")


def format_instant(moment: datetime) -> str:
    """A FHIR instant with microseconds, in UTC: `2026-01-02T03:04:05.123456+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def reference_of(element: Any) -> str | None:
    """The `reference` of a Reference element, made relative (`Type/id`)."""
    if not isinstance(element, dict) or not isinstance(element.get("reference"), str):
        return None
    parts = [part for part in element["reference"].split("/") if part]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource belongs to (itself for a Patient), if any."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for element in PATIENT_ELEMENTS:
        reference = reference_of(resource.get(element))
        if reference and reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    return None


class Store:
    """Resources by type and id, with their history. Stored resources are never mutated: each write
    stores a new dict, so searches can hold on to what they found."""

    def __init__(self) -> None:
        self._current: dict[str, dict[str, dict[str, Any]]] = {}
        self._history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._deleted: set[tuple[str, str]] = set()
        self._by_patient: dict[str, dict[tuple[str, str], None]] = {}
        self._last_updated = datetime.fromtimestamp(0, UTC)

    def next_instant(self) -> datetime:
        """Now, or just after the previous write when the clock has not moved on."""
        now = datetime.now(UTC)
        self._last_updated = max(now, self._last_updated + timedelta(microseconds=1))
        return self._last_updated

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Store a new version of `resource` (which needs a resourceType and an id); returns it as stored."""
        resource_type, resource_id = str(resource["resourceType"]), str(resource["id"])
        key = (resource_type, resource_id)
        versions = self._history.setdefault(key, [])
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(len(versions) + 1)
        meta["lastUpdated"] = format_instant(self.next_instant())
        stored = {**resource, "meta": meta}
        versions.append(stored)
        self._deleted.discard(key)
        old = self._current.setdefault(resource_type, {}).get(resource_id)
        if old is not None and (old_patient := patient_of(old)) is not None:
            self._by_patient.get(old_patient, {}).pop(key, None)
        self._current[resource_type][resource_id] = stored
        if (patient := patient_of(stored)) is not None:
            self._by_patient.setdefault(patient, {})[key] = None
        return stored

    def delete(self, resource_type: str, resource_id: str) -> bool:
        """Delete a resource (its history stays); False when there was none."""
        current = self._current.get(resource_type, {}).pop(resource_id, None)
        if current is None:
            return False
        self._deleted.add((resource_type, resource_id))
        if (patient := patient_of(current)) is not None:
            self._by_patient.get(patient, {}).pop((resource_type, resource_id), None)
        return True

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The current version, or None when absent or deleted."""
        return self._current.get(resource_type, {}).get(resource_id)

    def is_deleted(self, resource_type: str, resource_id: str) -> bool:
        """Whether the resource existed and was deleted (a read answers 410)."""
        return (resource_type, resource_id) in self._deleted

    def version(self, resource_type: str, resource_id: str, version_id: str) -> dict[str, Any] | None:
        """One version of a resource, or None."""
        for stored in self._history.get((resource_type, resource_id), []):
            if stored["meta"]["versionId"] == version_id:
                return stored
        return None

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        """Current resources of a type, in the order they were first stored."""
        return list(self._current.get(resource_type, {}).values())

    def types(self) -> list[str]:
        """Types with at least one current resource, sorted."""
        return sorted(name for name, resources in self._current.items() if resources)

    def all(self) -> Iterator[dict[str, Any]]:
        """Every current resource."""
        for resources in self._current.values():
            yield from resources.values()

    def about_patient(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient and every current resource whose subject/patient is that patient."""
        found = []
        for resource_type, resource_id in self._by_patient.get(patient_id, {}):
            resource = self._current.get(resource_type, {}).get(resource_id)
            if resource is not None:
                found.append(resource)
        return found

    def count(self) -> int:
        """How many current resources there are."""
        return sum(len(resources) for resources in self._current.values())


def bundle_resources(path: Path) -> list[dict[str, Any]]:
    """The resources of a (transaction) Bundle file, `urn:uuid:` references rewritten as `Type/id`."""
    return [entry.resource for entry in entries_of(json.loads(path.read_bytes()))]


def ndjson_resources(directory: Path) -> Iterable[dict[str, Any]]:
    """The resources of every `*.ndjson` file in a Bulk Data export directory (its `log.ndjson` aside)."""
    for path in sorted(directory.glob("*.ndjson")):
        if path.name == "log.ndjson":
            continue
        for entry in parse_ndjson(path.read_text()):
            yield entry.resource
