"""FHIR endpoints: import Bundles and NDJSON, receive subscription notifications. Errors are
`OperationOutcome`s; a request with any invalid resource writes nothing."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.fhir.bundles import BundleError, Entry, entries_of, parse_ndjson
from aftercare.fhir.resources import validation_problems
from aftercare.metrics import FHIR_RESOURCES
from aftercare.store.resources import StoreResult
from api.bodies import NDJSON_TYPES, media_type
from api.deps import ServicesDep
from api.errors import FhirError, issue
from api.services import Services
from models.api import ImportResult, NotificationResult

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])

_MAX_ISSUES = 50
_FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/fhir+json": {
                "schema": {"type": "object", "description": "a FHIR resource or Bundle"}
            },
            "application/json": {"schema": {"type": "object"}},
            "application/fhir+ndjson": {"schema": {"type": "string", "description": "one resource per line"}},
        },
    }
}


async def _read_entries(request: Request) -> list[Entry]:
    raw = await request.body()
    if not raw.strip():
        raise FhirError(400, [issue("required", "the request has no body")])
    try:
        if media_type(request) in NDJSON_TYPES:
            return parse_ndjson(raw.decode("utf-8"))
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            raise FhirError(
                400, [issue("structure", f"the body is not JSON: {error.msg} at position {error.pos}")]
            ) from error
        return entries_of(document)
    except BundleError as error:
        raise FhirError(400, [issue("structure", str(error), error.location or None)]) from error
    except UnicodeDecodeError as error:
        raise FhirError(400, [issue("structure", "the body is not UTF-8")]) from error


def _validate(entries: list[Entry]) -> list[dict[str, Any]]:
    resources = []
    problems: list[dict[str, Any]] = []
    for entry in entries:
        found = validation_problems(entry.resource)
        if not found and not entry.resource.get("id"):
            found = [(str(entry.resource.get("resourceType")), "the resource has no id")]
        for path, message in found:
            name = f"{entry.resource.get('resourceType', 'resource')}/{entry.resource.get('id', '?')}"
            problems.append(issue("invalid", f"{entry.location} ({name}): {path}: {message}", path))
        resources.append(entry.resource)
    if problems:
        if len(problems) > _MAX_ISSUES:
            extra = len(problems) - _MAX_ISSUES
            problems = [*problems[:_MAX_ISSUES], issue("too-costly", f"{extra} more problems not listed")]
        raise FhirError(422, problems)
    return resources


async def _store_and_trigger(
    services: Services, entries: list[Entry], *, source: str, fire_triggers: bool
) -> tuple[StoreResult, int]:
    ingested = await ingest_fhir_resources(
        services.sessions,
        services.starter,
        services.temporal,
        _validate(entries),
        source=source,
        phone_region=services.settings.phone_default_region,
        fire_triggers=fire_triggers,
    )
    for outcome, counts in (("new", ingested.stored.imported), ("unchanged", ingested.stored.unchanged)):
        for resource_type, count in counts.items():
            FHIR_RESOURCES.labels(source, resource_type, outcome).inc(count)
    return ingested.stored, ingested.triggered


@router.post("/import", response_model=ImportResult, openapi_extra=_FHIR_BODY)
async def import_resources(
    request: Request,
    services: ServicesDep,
    triggers: Annotated[bool, Query(description="fire journeys' FHIR entries for new versions")] = True,
) -> ImportResult:
    """Import a Bundle (transaction, batch, collection) or NDJSON into the patient store."""
    entries = await _read_entries(request)
    stored, triggered = await _store_and_trigger(services, entries, source="import", fire_triggers=triggers)
    return ImportResult(imported=dict(stored.imported), unchanged=dict(stored.unchanged), triggered=triggered)


@router.post("/notifications", response_model=NotificationResult, openapi_extra=_FHIR_BODY)
async def receive_notification(request: Request, services: ServicesDep) -> NotificationResult:
    """Receive a subscription notification (an R4 rest-hook resource body)."""
    entries = await _read_entries(request)
    if any(entry.resource.get("resourceType") == "SubscriptionStatus" for entry in entries):
        raise FhirError(
            422,
            [
                issue(
                    "not-supported",
                    "topic-based notification Bundles (R4B/R5, Subscriptions Backport) are not accepted yet; "
                    "send the resource itself (R4 rest-hook)",
                )
            ],
        )
    stored, triggered = await _store_and_trigger(services, entries, source="notification", fire_triggers=True)
    return NotificationResult(
        received=dict(stored.imported), unchanged=dict(stored.unchanged), triggered=triggered
    )
