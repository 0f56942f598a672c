"""Turning a request body (a Bundle or NDJSON) into resources with resolved references.

Transaction Bundles as Synthea writes them refer to each other by `urn:uuid:` full URLs; those become
`Type/id` references so the stored resources stand on their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aftercare.nesting import TooDeepError, load_json

BUNDLE_TYPES_ACCEPTED = frozenset({"transaction", "batch", "collection", "searchset", "history", "message"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BundleError(ValueError):
    """The body cannot be read as FHIR resources; `location` says where (entry or line)."""

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(message)
        self.location = location


@dataclass(frozen=True)
class Entry:
    """One resource taken from a request, with where it came from for error messages."""

    location: str
    resource: dict[str, Any]


def parse_ndjson(text: str) -> list[Entry]:
    """One resource per line; blank lines are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = load_json(line)
        except json.JSONDecodeError as error:
            raise BundleError(f"line {number} is not JSON: {error.msg}", f"line {number}") from error
        except TooDeepError as error:
            raise BundleError(f"line {number}: {error}", f"line {number}") from error
        if not isinstance(resource, dict):
            raise BundleError(f"line {number} is not a JSON object", f"line {number}")
        entries.append(Entry(f"line {number}", resource))
    return entries


def entries_of(document: Any) -> list[Entry]:
    """A Bundle's resources (references resolved) or a single resource, from a parsed JSON body."""
    if not isinstance(document, dict):
        raise BundleError("the body is not a JSON object")
    if document.get("resourceType") != "Bundle":
        return [Entry(str(document.get("resourceType", "resource")), document)]
    bundle_type = document.get("type")
    if bundle_type not in BUNDLE_TYPES_ACCEPTED:
        raise BundleError(f"Bundle.type {bundle_type!r} cannot be imported", "Bundle.type")
    raw_entries = document.get("entry") or []
    if not isinstance(raw_entries, list):
        raise BundleError("Bundle.entry is not a list", "Bundle.entry")
    entries: list[Entry] = []
    for position, entry in enumerate(raw_entries):
        location = f"Bundle.entry[{position}]"
        if not isinstance(entry, dict):
            raise BundleError(f"{location} is not an object", location)
        method = ((entry.get("request") or {}).get("method") or "").upper()
        if method and method not in _WRITE_METHODS:
            raise BundleError(f"{location}.request.method {method} is not supported by import", location)
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise BundleError(f"{location} has no resource", location)
        entries.append(Entry(location, dict(resource)))
    return _resolve_full_urls(raw_entries, entries)


def _resolve_full_urls(raw_entries: list[dict[str, Any]], entries: list[Entry]) -> list[Entry]:
    """Give every resource an id and rewrite references to other entries' full URLs as `Type/id`."""
    local: dict[str, str] = {}
    for raw, entry in zip(raw_entries, entries, strict=True):
        resource = entry.resource
        full_url = raw.get("fullUrl")
        if not resource.get("id"):
            resource["id"] = _id_from_full_url(full_url) or str(uuid.uuid4())
        if isinstance(full_url, str) and full_url:
            local[full_url] = f"{resource.get('resourceType')}/{resource['id']}"
    if not local:
        return entries
    return [Entry(entry.location, _rewrite_references(entry.resource, local)) for entry in entries]


def _id_from_full_url(full_url: Any) -> str | None:
    if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        return full_url.removeprefix("urn:uuid:")
    return None


def _rewrite_references(node: Any, local: dict[str, str]) -> Any:
    if isinstance(node, dict):
        rewritten = {key: _rewrite_references(value, local) for key, value in node.items()}
        reference = rewritten.get("reference")
        if isinstance(reference, str) and reference in local:
            rewritten["reference"] = local[reference]
        return rewritten
    if isinstance(node, list):
        return [_rewrite_references(item, local) for item in node]
    return node


def iter_resources(entries: list[Entry]) -> Iterator[dict[str, Any]]:
    """The resources alone."""
    return (entry.resource for entry in entries)
