"""One NDJSON line (or Bundle entry) to a resource, or the reason it is parked.

The checks are the cheap ones that keep the store sound: JSON, an object, a known resource type and a
FHIR id. Full model validation costs about a millisecond a resource and is asked for with `validate`.
Reasons name what is wrong, never the content (no PHI in errors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aftercare.fhir.resources import is_resource_type, validation_problems

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class Parked:
    """A line that cannot be imported, and why."""

    reason: str


def read_item(item: str | dict[str, Any], *, validate: bool = False) -> dict[str, Any] | Parked:
    """The resource of an NDJSON line or a Bundle entry's resource, or why it cannot be imported."""
    if isinstance(item, str):
        if "\\u0000" in item:
            return Parked("contains \\u0000, which PostgreSQL cannot store")
        try:
            resource = json.loads(item)
        except json.JSONDecodeError as error:
            return Parked(f"not JSON: {error.msg} at position {error.pos}")
    else:
        resource = item
    if not isinstance(resource, dict):
        return Parked("not a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return Parked("not a FHIR resource: no resourceType")
    if not is_resource_type(resource_type):
        return Parked(f"{resource_type[:64]!r} is not a FHIR resource type")
    resource_id = resource.get("id")
    if not isinstance(resource_id, str) or not _FHIR_ID.fullmatch(resource_id):
        return Parked(f"{resource_type} without a valid id")
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if version is not None and (not isinstance(version, str) or not _FHIR_ID.fullmatch(version)):
        return Parked(f"{resource_type} with an invalid meta.versionId")
    if validate:
        problems = validation_problems(resource)
        if problems:
            return Parked("; ".join(f"{path}: {message}" for path, message in problems[:5]))
    return resource
