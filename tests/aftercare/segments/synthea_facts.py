"""The Synthea sample read straight from its files into plain Python facts per patient, so segment
tests can compute expected members without the product's code."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from tests.conftest import SYNTHEA_BULK, SYNTHEA_BUNDLES


@dataclass
class PatientFacts:
    """What a segment test needs to know about one patient."""

    id: str
    birth_date: date | None
    deceased: bool
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def instant(value: str | None) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (date only: midnight UTC)."""
    if not value:
        return None
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def codes(concept: dict[str, Any] | None) -> set[str]:
    """`system|code` of every coding."""
    return {f"{c.get('system', '')}|{c['code']}" for c in (concept or {}).get("coding", []) if "code" in c}


def status_code(concept: dict[str, Any] | None) -> str | None:
    """The first code of a status concept."""
    codings = (concept or {}).get("coding") or [{}]
    code = codings[0].get("code")
    return code if isinstance(code, str) else None


def _subject(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    for prefix in ("urn:uuid:", "Patient/"):
        if reference.startswith(prefix):
            return str(reference.removeprefix(prefix))
    return None


def _resources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(SYNTHEA_BUNDLES.glob("*.json")):
        found += [entry["resource"] for entry in json.loads(path.read_text()).get("entry", [])]
    for path in sorted(SYNTHEA_BULK.glob("*.ndjson")):
        if not path.name.startswith("log"):
            found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


@cache
def synthea_patients() -> dict[str, PatientFacts]:
    """Every Synthea patient with their resources by type."""
    resources = _resources()
    patients = {
        r["id"]: PatientFacts(
            r["id"],
            date.fromisoformat(r["birthDate"]) if r.get("birthDate") else None,
            bool(r.get("deceasedDateTime") or r.get("deceasedBoolean")),
        )
        for r in resources
        if r["resourceType"] == "Patient"
    }
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        subject = _subject(resource)
        identity = (resource["resourceType"], resource.get("id", ""))
        if subject in patients and identity not in seen:
            seen.add(identity)
            patients[subject].resources[resource["resourceType"]].append(resource)
    return patients


def age(birth_date: date | None, on: date) -> int | None:
    """Whole years."""
    if birth_date is None:
        return None
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def observations(patient: PatientFacts, tokens: set[str]) -> list[tuple[datetime, float | None]]:
    """(time, value) of every observation or observation component with one of the codes."""
    found = []
    for observation in patient.resources["Observation"]:
        when = instant(observation.get("effectiveDateTime"))
        if when is None:
            continue
        if codes(observation.get("code")) & tokens:
            found.append((when, observation.get("valueQuantity", {}).get("value")))
        for component in observation.get("component", []):
            if codes(component.get("code")) & tokens:
                found.append((when, component.get("valueQuantity", {}).get("value")))
    return found
