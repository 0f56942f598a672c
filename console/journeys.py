"""Journeys: the list (latest version, entry, live counts; the ready-made journeys to start from, installed
in one click) and a journey's page (its definition drawn as
a graph with how many enrollments sit at or have passed each step, and its latest enrollments), and a
dry run of it against a chosen patient (`console/journey_dry_run.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.exceptions import ApplicationError

from aftercare.security.principal import Principal
from aftercare.store.enrollments import list_enrollments
from aftercare.store.identity import person_of
from aftercare.store.journey_progress import JourneyCount, journey_counts, step_counts
from aftercare.store.journeys import get_journey, latest_journeys
from api.deps import get_services
from api.routes.enrollments import enrollment_item
from api.routes.library import install_journey
from console.auth import ConsoleUser
from console.forms import read_form, read_form_values
from console.journey_dry_run import dry_run, happenings
from console.journey_graph import GraphStep, journey_graph
from console.rendering import render
from journeys.catalogue import library
from models.api import EnrollmentListItem
from models.journey import JourneyDefinition
from models.roles import Permission

router = APIRouter(prefix="/console/journeys", include_in_schema=False)


@dataclass(frozen=True)
class JourneyRow:
    """A journey as the list shows it."""

    journey: JourneyDefinition
    entry: str
    count: JourneyCount


def entry_of(journey: JourneyDefinition) -> str:
    """How patients enter, in a few words."""
    entry = journey.entry
    if entry is None:
        return "by API or the console"
    if entry.fhir is not None:
        return f"FHIR {entry.fhir.resource}"
    if entry.event is not None:
        return f"event {entry.event.type}"
    return f"segment {entry.segment}" if entry.segment else "by API or the console"


@router.get("", response_class=HTMLResponse)
async def journeys(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every journey's latest version with its running and total enrollments."""
    async with get_services(request).sessions() as session:
        definitions = await latest_journeys(session)
        counts = await journey_counts(session)
    rows = [
        JourneyRow(journey, entry_of(journey), counts.get(journey.key, JourneyCount()))
        for journey in definitions
    ]
    ready_made = list(library()) if user.can(Permission.JOURNEYS_WRITE) else []
    context = {"rows": sorted(rows, key=lambda row: row.journey.key), "library": ready_made}
    return render(request, "journeys.html", context)


@router.post("/library/{key}/install", response_class=HTMLResponse)
async def install(request: Request, key: str, user: ConsoleUser) -> Response:
    """Publish a ready-made journey and its templates, as the API's library does."""
    try:
        async with get_services(request).sessions() as session:
            await install_journey(key, session, Response())
    except HTTPException as error:
        return render(
            request, "not_found.html", {"what": "ready-made journey"}, status_code=error.status_code
        )
    return RedirectResponse(f"/console/journeys/{key}?installed=1", status_code=303)


@dataclass(frozen=True)
class JourneyPage:
    """The journey page's view model."""

    journey: JourneyDefinition
    graph: list[GraphStep]
    enrollments: list[EnrollmentListItem]


async def journey_page(request: Request, key: str, user: Principal) -> JourneyPage | None:
    """The latest version, drawn with its counts, and its latest enrollments."""
    async with get_services(request).sessions() as session:
        journey = await get_journey(session, key)
        if journey is None:
            return None
        counts = await step_counts(session, key)
        enrollments = (
            [enrollment_item(row) for row in await list_enrollments(session, journey_key=key, limit=25)]
            if user.can(Permission.ENROLLMENTS_READ)
            else []
        )
    return JourneyPage(journey, journey_graph(journey, counts), enrollments)


def _journey(
    request: Request, page: JourneyPage | None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    if page is None:
        return render(request, "not_found.html", {"what": "journey"}, status_code=404)
    context = {"page": page, "entry": entry_of(page.journey), "happenings": happenings(page.journey), **extra}
    return render(request, "journey.html", context, status_code=status_code)


@router.get("/{key}", response_class=HTMLResponse)
async def journey(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """A journey's graph with counts per step."""
    return _journey(request, await journey_page(request, key, user))


@router.post("/{key}/dry-run", response_class=HTMLResponse)
async def journey_dry_run(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The path the latest version would take for the posted patient, sending nothing."""
    form = await read_form(request)
    patient_id = str(form.get("patient_id") or "").strip()
    page = await journey_page(request, key, user)
    if page is None or not patient_id:
        return _journey(request, page, 422, dry_run_error="Enter a patient id.")
    services = get_services(request)
    async with services.sessions() as session:
        person = await person_of(session, patient_id)
    if person is None:
        return _journey(request, page, 422, dry_run_error="There is no patient with this id.")
    try:
        chosen = set(await read_form_values(request, "happens"))
        offered = {choice.step_id for choice in happenings(page.journey)}
        result = await dry_run(services.sessions, page.journey, person, frozenset(chosen & offered))
    except ApplicationError as error:
        return _journey(request, page, 422, dry_run_error=str(error))
    return _journey(request, page, dry_run=result, happens=chosen)
