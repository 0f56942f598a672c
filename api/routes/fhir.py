"""FHIR endpoints: the CapabilityStatement, import Bundles and NDJSON, receive subscription
notifications. Errors are `OperationOutcome`s; a request with any invalid resource writes nothing (a
batch Bundle excepted: its entries are taken one by one)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.fhir.capability import capability_statement
from aftercare.fhir_sync.intake import NotificationIntake
from aftercare.fhir_sync.notifications import NotificationError, is_topic_bundle, ping, read_topic_bundle
from aftercare.fhir_sync.sources import DEFAULT_SOURCE, SourceMissingError, source_plan
from aftercare.metrics import FHIR_RESOURCES
from aftercare.nesting import TooDeepError, load_json
from aftercare.store.resources import StoreResult
from api.bodies import NDJSON_TYPES, media_type
from api.deps import ServicesDep
from api.errors import FHIR_JSON, FhirError, issue
from api.fhir_bodies import FhirBody, fhir_body_type, read_fhir_body, resources_to_store, too_deep
from api.services import Services
from models.api import ImportResult, NotificationResult, RejectedEntry

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])

# A body-less rest-hook ping declares no FHIR body (R4: a subscription without payload); a request that
# declares one and sends nothing is a mistake, such as curl's `-d @file` naming a file that is not there.
_DECLARED_BODY_TYPES = NDJSON_TYPES | {"application/fhir+json", "application/json+fhir", "application/json"}
FHIR_NOTIFICATION_BODY = {
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


async def _store_and_trigger(
    services: Services, body: FhirBody, *, source: str, fire_triggers: bool
) -> tuple[StoreResult, int, list[RejectedEntry]]:
    resources, rejected = resources_to_store(body)
    if not resources:
        return StoreResult(), 0, rejected
    ingested = await ingest_fhir_resources(
        services.sessions,
        services.starter,
        services.temporal,
        resources,
        source=source,
        phone_region=services.settings.phone_default_region,
        fire_triggers=fire_triggers,
        identity_rules=services.settings.identity_rules,
        write_back_queue=services.settings.write_back_queue,
    )
    for outcome, counts in (("new", ingested.stored.imported), ("unchanged", ingested.stored.unchanged)):
        for resource_type, count in counts.items():
            FHIR_RESOURCES.labels(source.split(":")[0], resource_type, outcome).inc(count)
    return ingested.stored, ingested.triggered, rejected


@router.get("/metadata", response_model=dict[str, Any], responses={200: {"content": {FHIR_JSON: {}}}})
async def capability(services: ServicesDep) -> JSONResponse:
    """Aftercare's CapabilityStatement (FHIR R4): what it accepts, and what it reads and writes."""
    return JSONResponse(capability_statement(services.settings.public_base_url), media_type=FHIR_JSON)


@router.post("/import", response_model=ImportResult, openapi_extra=FHIR_NOTIFICATION_BODY)
async def import_resources(
    request: Request,
    services: ServicesDep,
    triggers: Annotated[bool, Query(description="fire journeys' FHIR entries for new versions")] = True,
) -> ImportResult:
    """Import a Bundle (transaction, batch, collection) or NDJSON into the patient store."""
    body = await read_fhir_body(request)
    stored, triggered, rejected = await _store_and_trigger(
        services, body, source="import", fire_triggers=triggers
    )
    imported, unchanged = dict(stored.imported), dict(stored.unchanged)
    return ImportResult(imported=imported, unchanged=unchanged, triggered=triggered, rejected=rejected)


SourceQuery = Annotated[str, Query(description="the FHIR source that sends this", max_length=64)]
ResourceTypePath = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
ResourceIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


@router.post("/notifications", response_model=NotificationResult, openapi_extra=FHIR_NOTIFICATION_BODY)
async def receive_notification(
    request: Request,
    services: ServicesDep,
    source: SourceQuery = DEFAULT_SOURCE,
    resource: Annotated[
        list[str], Query(description="for an empty rest-hook ping: the changed resources, `Type/id`")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
) -> NotificationResult:
    """Receive a subscription notification in any standard shape: an R4 rest-hook resource body, an
    empty rest-hook ping, or a topic-based notification Bundle (R4 Backport, R4B, R5). A source other
    than the default one may also post to `/v1/fhir/sources/{key}/notifications`."""
    return await take_notification(request, services, source, resource)


# One route per method, so each operation has its own operationId (client generators need them unique).
@router.put(
    "/notifications/{resource_type}/{resource_id}",
    response_model=NotificationResult,
    openapi_extra=FHIR_NOTIFICATION_BODY,
)
@router.post(
    "/notifications/{resource_type}/{resource_id}",
    response_model=NotificationResult,
    openapi_extra=FHIR_NOTIFICATION_BODY,
)
async def receive_resource_notification(
    resource_type: ResourceTypePath,
    resource_id: ResourceIdPath,
    request: Request,
    services: ServicesDep,
    source: SourceQuery = DEFAULT_SOURCE,
) -> NotificationResult:
    """An R4 rest-hook notification sent to `{endpoint}/{type}/{id}` (as HAPI FHIR does): the resource
    as the body, or an empty body meaning "this resource changed, read it"."""
    return await take_resource_notification(request, services, source, resource_type, resource_id)


async def take_notification(
    request: Request, services: Services, source: str, references: list[str]
) -> NotificationResult:
    """A notification posted to a source's endpoint, in any standard shape."""
    intake = _intake(services)
    raw = await request.body()
    if not raw.strip():
        _refuse_a_declared_body_that_is_empty(request)
        await _require_source(services, source)
        taken = await intake.take(source, ping([reference for reference in references if "/" in reference]))
        return NotificationResult(received={}, triggered=0, kind="ping", queued=taken.queued)
    document = None if fhir_body_type(request) in NDJSON_TYPES else _json_body(raw)
    if document is not None and is_topic_bundle(document):
        try:
            notification = read_topic_bundle(document)
        except NotificationError as error:
            raise FhirError(400, [issue("structure", str(error))]) from error
        if notification.references or notification.content == "empty":
            await _require_source(services, source)
        taken = await intake.take(source, notification)
        received = taken.received
        return NotificationResult(
            received=received.stored_by_type if received else {},
            unchanged=received.unchanged_by_type if received else {},
            triggered=received.triggered if received else 0,
            parked=received.parked if received else 0,
            kind=notification.kind,
            queued=taken.queued,
            missed_events=list(taken.gap) if taken.gap else None,
        )
    return await _rest_hook(services, await read_fhir_body(request), source)


async def take_resource_notification(
    request: Request, services: Services, source: str, resource_type: str, resource_id: str
) -> NotificationResult:
    """A rest-hook notification naming its resource in the URL."""
    raw = await request.body()
    if not raw.strip():
        _refuse_a_declared_body_that_is_empty(request)
        await _require_source(services, source)
        taken = await _intake(services).take(source, ping([f"{resource_type}/{resource_id}"]))
        return NotificationResult(received={}, triggered=0, kind="ping", queued=taken.queued)
    body = await read_fhir_body(request)
    entries = body.entries
    if len(entries) != 1 or (
        entries[0].resource.get("resourceType"),
        entries[0].resource.get("id"),
    ) != (resource_type, resource_id):
        raise FhirError(
            400,
            [issue("invalid", f"the body must be the resource {resource_type}/{resource_id} the URL names")],
        )
    return await _rest_hook(services, body, source)


async def _rest_hook(services: Services, body: FhirBody, source: str) -> NotificationResult:
    stored, triggered, _ = await _store_and_trigger(
        services, body, source=f"notification:{source}", fire_triggers=True
    )
    return NotificationResult(
        received=dict(stored.imported),
        unchanged=dict(stored.unchanged),
        triggered=triggered,
        kind="rest-hook",
    )


def _refuse_a_declared_body_that_is_empty(request: Request) -> None:
    """400 for an empty body that says it is FHIR JSON or NDJSON; without such a type it is a ping."""
    kind = media_type(request)
    if kind in _DECLARED_BODY_TYPES:
        raise FhirError(
            400,
            [
                issue(
                    "required",
                    f"the body is empty, but its Content-Type says {kind}: send the resource or notification "
                    "Bundle (with curl, `--data-binary @file.json` naming a file that exists); an empty "
                    "rest-hook ping is sent without a Content-Type",
                )
            ],
        )


def _intake(services: Services) -> NotificationIntake:
    return NotificationIntake(services.ingestion(), services.temporal, services.settings.temporal_task_queue)


def _json_body(raw: bytes) -> Any:
    try:
        return load_json(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except TooDeepError as error:
        raise too_deep(error) from error


async def _require_source(services: Services, key: str) -> None:
    """A notification whose work needs the server: the source must be known."""
    async with services.sessions() as session:
        try:
            await source_plan(session, services.settings, key)
        except SourceMissingError as error:
            raise FhirError(
                422,
                [
                    issue(
                        "not-supported",
                        "this notification carries no resources (an empty ping, or ids only), so they are "
                        f"read from its FHIR source, and there is none: {error}",
                    )
                ],
            ) from error
