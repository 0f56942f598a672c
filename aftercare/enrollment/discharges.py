"""One discharge, one trigger: an Encounter finishing is keyed by the visit and its end, not by the
resource version, so the same discharge arriving as an HL7 v2 A03 and as the hospital's FHIR Encounter
(or updated by an A08 afterwards) starts a journey once. A discharge cancelled (A13) and made again
with another end time is a new discharge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def discharge_key(encounter: dict[str, Any]) -> str | None:
    """`discharge:<system>|<value>@<end in UTC>` for a finished Encounter with a visit identifier and
    an end; None otherwise (the resource version keys the trigger then)."""
    if encounter.get("resourceType") != "Encounter" or encounter.get("status") != "finished":
        return None
    end = _utc((encounter.get("period") or {}).get("end"))
    visit = _visit_identifier(encounter.get("identifier") or [])
    if end is None or visit is None:
        return None
    return f"discharge:{visit}@{end}"[:300]


def _visit_identifier(identifiers: list[Any]) -> str | None:
    usable = [i for i in identifiers if isinstance(i, dict) and i.get("system") and i.get("value")]
    visits = [i for i in usable if _is_visit_number(i)]
    chosen = visits or usable
    return f"{chosen[0]['system']}|{chosen[0]['value']}" if chosen else None


def _is_visit_number(identifier: dict[str, Any]) -> bool:
    codings = (identifier.get("type") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == "VN" for c in codings)


def _utc(value: Any) -> str | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
