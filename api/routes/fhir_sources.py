"""FHIR sources: the servers Aftercare reads from, how far polling has read them, and registering
subscriptions on them. The "default" source comes from the `FHIR_*` settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from aftercare.fhir_client.config import check_source_auth, client_for_source
from aftercare.fhir_client.errors import FhirClientError, FhirConfigError
from aftercare.fhir_sync.sources import (
    SourceMissingError,
    SourcePlan,
    open_client,
    source_plans,
)
from aftercare.fhir_sync.subscriptions import (
    notification_endpoint,
    register_with_key,
    watched_by_journeys,
)
from aftercare.store.fhir_sources import (
    cursors_of,
    pending_notifications,
    save_source,
    subscription_states_of,
)
from aftercare.store.journeys import latest_journeys
from aftercare.temporal.schedules import ensure_poll_schedule
from api.definition_owner import check_reach
from api.deps import ServicesDep, SessionDep
from api.routes.fhir import (
    FHIR_NOTIFICATION_BODY,
    ResourceIdPath,
    ResourceTypePath,
    take_notification,
    take_resource_notification,
)
from api.security import CurrentPrincipal
from models.api import NotificationResult
from models.fhir_sources import (
    CursorView,
    PollStarted,
    RegisteredSubscription,
    RegisteredSubscriptions,
    SourceList,
    SourceRequest,
    SourceView,
    SubscriptionRegistration,
    SubscriptionStateView,
)
from models.tables import FhirSource
from models.temporal import PollSourceInput
from models.workflow_names import FHIR_POLL_WORKFLOW

router = APIRouter(prefix="/v1/fhir/sources", tags=["fhir"])


@router.get("", response_model=SourceList)
async def list_sources(services: ServicesDep, session: SessionDep) -> SourceList:
    """Every source, with how far it has been read."""
    plans = await source_plans(session, services.settings)
    return SourceList(items=[await _view(session, services, plan) for plan in plans])


@router.post("", response_model=SourceView, status_code=status.HTTP_201_CREATED)
async def save(
    request: SourceRequest, services: ServicesDep, response: Response, principal: CurrentPrincipal
) -> SourceView:
    """Register a source (or change one: 200). Secrets are named (`*_env`, `*_file`), never sent. The
    patients read from a source with a `facility` belong to it."""
    problems = check_source_auth(request.auth)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(problems))
    try:
        # Reading the named secrets now makes a missing variable or file a 422, not a failed poll later.
        await client_for_source(request).aclose()
    except FhirConfigError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    async with services.sessions.begin() as session:
        await check_reach(session, principal, request.facility)
        created = await save_source(
            session,
            key=request.key,
            base_url=request.base_url,
            auth=dict(request.auth),
            watched_types=list(request.watched_types),
            poll_seconds=request.poll_seconds,
            facility=request.facility,
        )
    try:
        await ensure_poll_schedule(
            services.temporal, services.settings.temporal_task_queue, request.key, request.poll_seconds
        )
    except RPCError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the source is saved but its polling schedule is not: Temporal answered {error.status.name}",
        ) from error
    if not created:
        response.status_code = status.HTTP_200_OK
    plan = SourcePlan(request.key, request.base_url, tuple(request.watched_types), request.poll_seconds)
    async with services.sessions() as session:
        return await _view(session, services, plan)


@router.get("/{key}", response_model=SourceView)
async def read_source(key: str, services: ServicesDep, session: SessionDep) -> SourceView:
    """One source, its polling marks per type, its subscriptions and unfinished notifications."""
    return await _view(session, services, await _plan(session, services, key))


@router.post("/{key}/poll", response_model=PollStarted, status_code=status.HTTP_202_ACCEPTED)
async def poll_now(key: str, services: ServicesDep) -> PollStarted:
    """Poll the source now (joins a poll already running)."""
    async with services.sessions() as session:
        await _plan(session, services, key)
    workflow_id = f"aftercare-fhir-poll-{key}-now"
    await services.temporal.start_workflow(
        FHIR_POLL_WORKFLOW,
        PollSourceInput(source_key=key),
        id=workflow_id,
        task_queue=services.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Poll FHIR source {key} now",
    )
    return PollStarted(workflow_id=workflow_id)


@router.post("/{key}/subscriptions", response_model=RegisteredSubscriptions)
async def register(
    key: str,
    request: SubscriptionRegistration,
    services: ServicesDep,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> RegisteredSubscriptions:
    """Register Subscriptions on the source for the journeys' FHIR entries (or the types given), so it
    notifies `{PUBLIC_BASE_URL}/v1/fhir/notifications` (the default source) or
    `{PUBLIC_BASE_URL}/v1/fhir/sources/{key}/notifications`. Idempotent. Each Subscription carries a
    fresh notify-only API key (`channel.header`); the source's previous key is revoked."""
    await _plan(session, services, key)
    if not services.settings.public_base_url:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "set PUBLIC_BASE_URL: the server must be told where to notify"
        )
    if request.style == "backport" and not request.topic:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "a backport subscription needs the topic the server offers"
        )
    types = list(request.resource_types or watched_by_journeys(await latest_journeys(session)))
    if not types:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "no journey has a FHIR entry: name the resource_types"
        )
    endpoint = notification_endpoint(services.settings.public_base_url, key)
    client = await open_client(session, services.settings, key)
    await session.close()
    try:
        async with client:
            registered = await register_with_key(
                client,
                services.sessions,
                key,
                types,
                endpoint,
                created_by=principal.subject,
                style=request.style,
                content=request.content,
                topic=request.topic,
            )
    except FhirClientError as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the FHIR server refused: {error}") from error
    return RegisteredSubscriptions(
        endpoint=endpoint,
        items=[
            RegisteredSubscription(
                resource_type=item.resource_type, subscription_id=item.subscription_id, created=item.created
            )
            for item in registered
        ],
    )


@router.post("/{key}/notifications", response_model=NotificationResult, openapi_extra=FHIR_NOTIFICATION_BODY)
async def receive_source_notification(
    key: str,
    request: Request,
    services: ServicesDep,
    resource: Annotated[
        list[str], Query(description="for an empty rest-hook ping: the changed resources, `Type/id`")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
) -> NotificationResult:
    """A notification from this source, in any standard shape (as `/v1/fhir/notifications`)."""
    return await take_notification(request, services, key, resource)


# One route per method, so each operation has its own operationId (client generators need them unique).
@router.put(
    "/{key}/notifications/{resource_type}/{resource_id}",
    response_model=NotificationResult,
    openapi_extra=FHIR_NOTIFICATION_BODY,
)
@router.post(
    "/{key}/notifications/{resource_type}/{resource_id}",
    response_model=NotificationResult,
    openapi_extra=FHIR_NOTIFICATION_BODY,
)
async def receive_source_resource_notification(
    key: str,
    resource_type: ResourceTypePath,
    resource_id: ResourceIdPath,
    request: Request,
    services: ServicesDep,
) -> NotificationResult:
    """A rest-hook notification from this source naming its resource in the URL (HAPI FHIR style)."""
    return await take_resource_notification(request, services, key, resource_type, resource_id)


async def _plan(session: SessionDep, services: ServicesDep, key: str) -> SourcePlan:
    for plan in await source_plans(session, services.settings):
        if plan.key == key:
            return plan
    raise HTTPException(status.HTTP_404_NOT_FOUND, str(SourceMissingError(f"no FHIR source {key!r}")))


async def _view(session: SessionDep, services: ServicesDep, plan: SourcePlan) -> SourceView:
    row = await session.get(FhirSource, plan.key)
    auth = dict(row.auth) if row is not None else {"kind": services.settings.fhir_auth, "from": "settings"}
    return SourceView(
        key=plan.key,
        base_url=plan.base_url,
        auth=auth,
        watched_types=list(plan.watched_types),
        poll_seconds=plan.poll_seconds,
        facility=row.facility if row is not None else None,
        cursors=[
            CursorView(
                resource_type=cursor.resource_type,
                high_water=cursor.high_water,
                resources_seen=cursor.resources_seen,
                last_run_at=cursor.last_run_at,
                last_error=cursor.last_error,
            )
            for cursor in await cursors_of(session, plan.key)
        ],
        subscriptions=[
            SubscriptionStateView(
                subscription=state.subscription,
                topic=state.topic,
                status=state.status,
                last_event_number=state.last_event_number,
                last_notification_at=state.last_notification_at,
                gaps_recovered=state.gaps_recovered,
            )
            for state in await subscription_states_of(session, plan.key)
        ],
        pending_notifications=await pending_notifications(session, plan.key),
    )
