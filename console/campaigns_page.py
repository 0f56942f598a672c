"""Campaigns: the list with each one's status, a form that creates a campaign from a segment and a
template (with an optional B variant for an A/B test), a campaign's page with its launch and its latest
run's progress and results (refreshed every few seconds). Definitions are validated and checked as the
API does; errors show next to their fields and nothing is saved."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.campaigns.validation import check_campaign, parse_campaign
from aftercare.definitions import DefinitionInvalidError
from aftercare.store.campaigns import CampaignVersionConflict, get_campaign, publish_campaign
from aftercare.store.segments import latest_segments
from aftercare.store.templates import latest_variants
from api.definition_owner import owned
from api.deps import get_services
from api.routes.campaigns import latest_results, launch_campaign, list_campaigns
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from models.campaign_api import CampaignRunView
from models.campaign_tables import Campaign

router = APIRouter(prefix="/console/campaigns", include_in_schema=False)

FIELDS = ("key", "name", "segment", "template", "template_b")


def campaign_document(values: dict[str, str]) -> dict[str, Any]:
    """The definition a filled form stands for: one template, or an even A/B split of two."""
    document: dict[str, Any] = {"key": values["key"], "name": values["name"], "segment": values["segment"]}
    if values.get("template_b"):
        document["variants"] = [
            {"key": "a", "template": values["template"]},
            {"key": "b", "template": values["template_b"]},
        ]
    else:
        document["template"] = values["template"]
    return document


def field_of(loc: tuple[str | int, ...]) -> str:
    """The form field a definition problem belongs to."""
    if loc and loc[0] == "variants":
        return "template_b" if len(loc) > 1 and loc[1] == 1 else "template"
    return str(loc[0]) if loc and str(loc[0]) in FIELDS else "key"


async def _list_page(
    request: Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> HTMLResponse:
    async with get_services(request).sessions() as session:
        campaigns = await list_campaigns(session)
        segments = await latest_segments(session)
        templates = sorted({variant.definition.key for variant in await latest_variants(session)})
    context = {
        "campaigns": campaigns.items,
        "segments": segments,
        "templates": templates,
        "values": values or {},
        "errors": errors or {},
    }
    return render(request, "campaigns.html", context, status_code=422 if errors else 200)


@router.get("", response_class=HTMLResponse)
async def campaigns(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The campaigns and the form to create one."""
    return await _list_page(request)


@router.post("", response_class=HTMLResponse)
async def create(request: Request, user: ConsoleUser) -> Response:
    """Create a campaign (version 1) from the form."""
    form = await read_form(request)
    values = {name: form.get(name, "").strip() for name in FIELDS}
    try:
        campaign = parse_campaign(campaign_document(values))
        async with get_services(request).sessions() as session, session.begin():
            campaign = await owned(session, user, Campaign, campaign, what="campaign")
            await check_campaign(session, campaign)
            await publish_campaign(session, campaign)
    except HTTPException as refused:  # the caller's facilities: whose campaign it would be
        return await _list_page(request, values, {"key": str(refused.detail)})
    except DefinitionInvalidError as error:
        errors: dict[str, str] = {}
        for problem in error.problems:
            errors.setdefault(field_of(problem.loc), problem.msg)
        return await _list_page(request, values, errors)
    except CampaignVersionConflict:
        return await _list_page(request, values, {"key": "a campaign with this key exists already"})
    return RedirectResponse(f"/console/campaigns/{campaign.key}", status_code=303)


async def _results(request: Request, key: str, user: ConsoleUser) -> CampaignRunView | None:
    try:
        async with get_services(request).sessions() as session:
            return await latest_results(key, session, user, None)
    except HTTPException as error:
        if error.status_code == 404:
            return None
        raise


@router.get("/{key}", response_class=HTMLResponse)
async def campaign(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The campaign, its launch button while a draft, and its latest run's results."""
    async with get_services(request).sessions() as session:
        definition = await get_campaign(session, key)
        listed = await list_campaigns(session)
    if definition is None:
        return render(request, "not_found.html", {"what": "campaign"}, status_code=404)
    status = next((item.status for item in listed.items if item.key == key), "draft")
    run = await _results(request, key, user)
    template = "campaign_results.html" if request.headers.get("hx-request") else "campaign.html"
    context = {"campaign": definition, "status": status, "run": run, "error": None}
    return render(request, template, context)


@router.post("/{key}/launch", response_class=HTMLResponse)
async def launch(request: Request, key: str, user: ConsoleUser) -> Response:
    """Launch the campaign's latest version."""
    services = get_services(request)
    try:
        async with services.sessions() as session:
            await launch_campaign(key, session, services, Response(), user)
    except HTTPException as error:
        return render(
            request, "forbidden.html", {"message": str(error.detail)}, status_code=error.status_code
        )
    return RedirectResponse(f"/console/campaigns/{key}", status_code=303)
