"""Campaigns: publish (JSON or YAML), list and read; launch, pause, resume and cancel; runs with their
progress and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from temporalio.service import RPCError

from aftercare.campaigns.launch import CampaignLauncher, CampaignStateError
from aftercare.campaigns.results import Tally, run_results
from aftercare.campaigns.validation import check_campaign, parse_campaign
from aftercare.security.minimum_necessary import sees_patients, shown_counts
from aftercare.store.campaigns import (
    CampaignVersionConflict,
    get_campaign,
    get_run,
    latest_campaigns,
    launches_of,
    publish_campaign,
    runs_of,
)
from api.bodies import definition_body, read_definition
from api.definition_owner import owned
from api.deps import ServicesDep, SessionDep
from api.security import CurrentPrincipal
from models.campaign import CampaignDefinition
from models.campaign_api import (
    CampaignControlBody,
    CampaignControlled,
    CampaignCreated,
    CampaignLaunched,
    CampaignList,
    CampaignRunList,
    CampaignRunView,
    CampaignSummary,
    CountView,
    ReasonView,
)
from models.campaign_tables import Campaign, CampaignRun

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


def _launcher(services: ServicesDep) -> CampaignLauncher:
    settings = services.settings
    return CampaignLauncher(
        services.sessions,
        services.temporal,
        settings.temporal_task_queue,
        parallel_batches=settings.campaign_parallel_batches,
    )


async def _campaign(session: SessionDep, key: str, version: int | None = None) -> CampaignDefinition:
    campaign = await get_campaign(session, key, version)
    if campaign is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no campaign {key!r}" + (f" version {version}" if version else "")
        )
    return campaign


def _counts(tally: Tally, exact: bool, prefix: str, redacted: list[str]) -> CountView:
    counts = {
        "targeted": tally.targeted,
        **tally.states,
        "sent": tally.sent,
        "delivered": tally.delivered,
        "opened": tally.opened,
        "clicked": tally.clicked,
        "replied": tally.replied,
        "opted_out": tally.opted_out,
        "failed": tally.failed,
        "in_flight": tally.in_flight,
    }
    shown, suppressed = shown_counts(counts, exact=exact, prefix=prefix)
    redacted += suppressed
    return CountView(**shown)


def _run_view(run: CampaignRun, exact: bool) -> CampaignRunView:
    """A run; its audience (the segment's size) under the small-cell rule unless the caller sees
    patients."""
    audience, redacted = shown_counts({"audience": run.audience or 0}, exact=exact)
    return CampaignRunView(
        run_id=run.id,
        campaign_key=run.campaign_key,
        campaign_version=run.campaign_version,
        status=run.status,
        phase=run.phase,
        segment=run.segment_key,
        segment_version=run.segment_version,
        audience=audience["audience"] if run.audience is not None else None,
        scheduled_for=run.scheduled_for,
        frozen_at=run.frozen_at,
        started_at=run.created_at,
        ended_at=run.ended_at,
        workflow_id=run.workflow_id,
        redacted=redacted if run.audience is not None else [],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignCreated,
    openapi_extra=definition_body("CampaignDefinition"),
    responses={409: {"description": "this key and version exist with other content"}},
)
async def create_campaign(
    request: Request, session: SessionDep, response: Response, principal: CurrentPrincipal
) -> CampaignCreated:
    """Publish a campaign version (JSON or YAML); the same content again is a no-op. A segment or
    template that does not exist, or does not fit, answers 422 naming where."""
    campaign = parse_campaign(await read_definition(request))
    async with session.begin():
        campaign = await owned(session, principal, Campaign, campaign, what="campaign")
        await check_campaign(session, campaign)
        try:
            outcome = await publish_campaign(session, campaign)
        except CampaignVersionConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    if outcome == "unchanged":
        response.status_code = status.HTTP_200_OK
    return CampaignCreated(key=campaign.key, version=campaign.version)


@router.get("", response_model=CampaignList)
async def list_campaigns(session: SessionDep) -> CampaignList:
    """The latest version of every campaign, with its launch status (`draft` when never launched)."""
    campaigns = await latest_campaigns(session)
    launches = await launches_of(session, campaigns)
    items = []
    for campaign in campaigns:
        launch = launches.get((campaign.key, campaign.version))
        items.append(
            CampaignSummary(
                key=campaign.key,
                version=campaign.version,
                name=campaign.name,
                segment=campaign.segment,
                status=launch.status if launch else "draft",
                recurring=launch.recurring if launch else None,
                facility=campaign.facility,
            )
        )
    return CampaignList(items=items)


@router.get(
    "/{key}",
    response_model=CampaignDefinition,
    response_model_exclude_none=True,
    response_model_by_alias=True,
)
async def read_campaign(
    key: str, session: SessionDep, version: Annotated[int | None, Query(ge=1)] = None
) -> CampaignDefinition:
    """A campaign definition: the latest version, or `?version=`."""
    return await _campaign(session, key, version)


@router.post(
    "/{key}/launch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CampaignLaunched,
    responses={200: {"description": "already launched"}, 409: {"description": "cancelled"}},
)
async def launch_campaign(
    key: str,
    session: SessionDep,
    services: ServicesDep,
    response: Response,
    principal: CurrentPrincipal,
    body: CampaignControlBody | None = None,
) -> CampaignLaunched:
    """Launch a campaign version: its run starts now (or waits for `schedule.at`), or its schedule of
    recurring runs is created. Launching again answers 200 with what the first launch started."""
    campaign = await _campaign(session, key, body.version if body else None)
    await session.close()
    try:
        launched = await _launcher(services).launch(campaign, sorted(principal.facilities))
    except CampaignStateError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except RPCError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Temporal is unavailable: {error}"
        ) from error
    if not launched.created:
        response.status_code = status.HTTP_200_OK
    return CampaignLaunched(
        key=launched.key,
        version=launched.version,
        status=launched.status,
        run_id=launched.run_id,
        schedule_id=launched.schedule_id,
    )


async def _steer(
    key: str, action: str, session: SessionDep, services: ServicesDep, body: CampaignControlBody | None
) -> CampaignControlled:
    body = body or CampaignControlBody()
    campaign = await _campaign(session, key, body.version)
    await session.close()
    launcher = _launcher(services)
    try:
        if action == "cancel":
            await launcher.cancel(campaign)
            state, final = None, "cancelled"
        else:
            state = await (launcher.pause if action == "pause" else launcher.resume)(campaign, body.reason)
            final = "paused" if action == "pause" else "launched"
    except CampaignStateError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except RPCError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Temporal is unavailable: {error}"
        ) from error
    return CampaignControlled(
        key=campaign.key,
        version=campaign.version,
        status=final,
        run_id=state.run_id if state else None,
        run_status=state.status if state else None,
        phase=state.phase if state else None,
    )


@router.post(
    "/{key}/pause", response_model=CampaignControlled, responses={409: {"description": "not running"}}
)
async def pause_campaign(
    key: str, session: SessionDep, services: ServicesDep, body: CampaignControlBody | None = None
) -> CampaignControlled:
    """Pause the campaign: its schedule stops, its run holds before the next batch."""
    return await _steer(key, "pause", session, services, body)


@router.post(
    "/{key}/resume", response_model=CampaignControlled, responses={409: {"description": "not paused"}}
)
async def resume_campaign(
    key: str, session: SessionDep, services: ServicesDep, body: CampaignControlBody | None = None
) -> CampaignControlled:
    """Resume a paused campaign."""
    return await _steer(key, "resume", session, services, body)


@router.post(
    "/{key}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CampaignControlled,
    responses={409: {"description": "not launched or already cancelled"}},
)
async def cancel_campaign(
    key: str, session: SessionDep, services: ServicesDep, body: CampaignControlBody | None = None
) -> CampaignControlled:
    """Cancel the campaign: no more runs, and the run in progress stops (its remaining recipients are
    recorded as `cancelled`)."""
    return await _steer(key, "cancel", session, services, body)


@router.get("/{key}/runs", response_model=CampaignRunList)
async def list_runs(
    key: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    version: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CampaignRunList:
    """The campaign's runs, newest first."""
    await _campaign(session, key)
    return CampaignRunList(
        items=[
            _run_view(run, sees_patients(principal))
            for run in await runs_of(session, key, version, limit=limit)
        ]
    )


@router.get("/{key}/runs/{run_id}", response_model=CampaignRunView)
async def read_run(
    key: str, run_id: str, session: SessionDep, principal: CurrentPrincipal
) -> CampaignRunView:
    """One run: status, phase, and its results: targeted, pending, deferred, messaged, suppressed and
    skipped (with the reasons), sent, delivered, opened, clicked, replied, opted out and failed, in
    total and per A/B variant. Without `clinical:read`, counts from 1 to 10 are null (`redacted`)."""
    run = await get_run(session, run_id)
    if run is None or run.campaign_key != key:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {key!r} has no run {run_id!r}")
    results = await run_results(session, run_id)
    exact = sees_patients(principal)
    view = _run_view(run, exact)
    view.totals = _counts(results.total, exact, "totals.", view.redacted)
    view.variants = {
        variant: _counts(tally, exact, f"variants.{variant}.", view.redacted)
        for variant, tally in results.variants.items()
    }
    names = [f"passed_over.{number}.count" for number in range(len(results.reasons))]
    counts, suppressed = shown_counts(
        {name: reason.count for name, reason in zip(names, results.reasons, strict=True)}, exact=exact
    )
    view.redacted += suppressed
    view.passed_over = [
        ReasonView(state=r.state, rule=r.rule, reason=r.reason, count=counts[name])
        for name, r in zip(names, results.reasons, strict=True)
    ]
    return view


@router.get("/{key}/results", response_model=CampaignRunView)
async def latest_results(
    key: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> CampaignRunView:
    """The latest run's progress and results (see `GET /v1/campaigns/{key}/runs/{run_id}`)."""
    await _campaign(session, key, version)
    runs = await runs_of(session, key, version, limit=1)
    if not runs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {key!r} has not run yet")
    return await read_run(key, runs[0].id, session, principal)
