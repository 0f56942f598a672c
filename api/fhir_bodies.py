"""Reading a FHIR request body (FHIR JSON or NDJSON) into resources, and the checks that decide what
may be stored: structure, required bindings, invariants, references inside a Bundle. Errors are
`FhirError`s, answered as `OperationOutcome`s."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from aftercare.fhir.bundles import BundleError, Entry, entries_of, parse_ndjson
from aftercare.fhir.conformance import bundle_problems, unresolved_references
from aftercare.fhir.resources import validation_problems
from aftercare.nesting import TooDeepError, load_json
from api.bodies import NDJSON_TYPES, media_type, unsupported_media_type
from api.errors import FhirError, issue
from models.api import RejectedEntry

_MAX_ISSUES = 50


# `application/json+fhir` is what DSTU2-era servers still send; no Content-Type is read as JSON.
FHIR_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir", ""})


def fhir_body_type(request: Request) -> str:
    """The body's media type; 415 (as an `OperationOutcome`) for one the FHIR endpoints do not read."""
    kind = media_type(request)
    if kind not in FHIR_JSON_TYPES and kind not in NDJSON_TYPES:
        raise unsupported_media_type(
            kind, "FHIR JSON (application/fhir+json or application/json) or NDJSON (application/fhir+ndjson)"
        )
    return kind


def too_deep(error: TooDeepError) -> FhirError:
    return FhirError(400, [issue("too-costly", str(error))])


@dataclass(frozen=True)
class FhirBody:
    """The resources of a request body, and the type of the Bundle they came in (None for NDJSON or
    a single resource)."""

    entries: list[Entry]
    bundle_type: str | None = None


async def read_fhir_body(request: Request) -> FhirBody:
    raw = await request.body()
    if not raw.strip():
        raise FhirError(400, [issue("required", "the request has no body")])
    try:
        if fhir_body_type(request) in NDJSON_TYPES:
            return FhirBody(parse_ndjson(raw.decode("utf-8")))
        try:
            document = load_json(raw)
        except json.JSONDecodeError as error:
            raise FhirError(
                400, [issue("structure", f"the body is not JSON: {error.msg} at position {error.pos}")]
            ) from error
        except TooDeepError as error:
            raise too_deep(error) from error
        if not (isinstance(document, dict) and document.get("resourceType") == "Bundle"):
            return FhirBody(entries_of(document))
        problems = bundle_problems(document)
        if problems:
            raise FhirError(422, [issue("code-invalid", f"{path}: {why}", path) for path, why in problems])
        return FhirBody(entries_of(document), str(document.get("type")))
    except BundleError as error:
        raise FhirError(400, [issue("structure", str(error), error.location or None)]) from error
    except UnicodeDecodeError as error:
        raise FhirError(400, [issue("structure", "the body is not UTF-8")]) from error


def _entry_issues(entry: Entry, *, in_bundle: bool) -> list[dict[str, Any]]:
    """The problems of one entry as `OperationOutcome` issues naming the element."""
    found = validation_problems(entry.resource)
    if not found and not entry.resource.get("id"):
        found = [(str(entry.resource.get("resourceType")), "the resource has no id")]
    if in_bundle and not found:
        found = unresolved_references(entry.resource)
    name = f"{entry.resource.get('resourceType', 'resource')}/{entry.resource.get('id', '?')}"
    return [issue("invalid", f"{entry.location} ({name}): {path}: {why}", path) for path, why in found]


def _bounded(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(problems) <= _MAX_ISSUES:
        return problems
    extra = len(problems) - _MAX_ISSUES
    return [*problems[:_MAX_ISSUES], issue("too-costly", f"{extra} more problems not listed")]


def resources_to_store(body: FhirBody) -> tuple[list[dict[str, Any]], list[RejectedEntry]]:
    """The resources to store. Any bad entry refuses the whole request (422), except in a batch Bundle,
    whose entries FHIR processes one by one: there the bad ones are reported and the rest go ahead."""
    resources = []
    problems: list[dict[str, Any]] = []
    rejected: list[RejectedEntry] = []
    for entry in body.entries:
        found = _entry_issues(entry, in_bundle=body.bundle_type is not None)
        if found and body.bundle_type == "batch":
            outcome = {"resourceType": "OperationOutcome", "issue": _bounded(found)}
            rejected.append(RejectedEntry(entry=entry.location, outcome=outcome))
            continue
        problems.extend(found)
        resources.append(entry.resource)
    if problems:
        raise FhirError(422, _bounded(problems))
    return resources, rejected
