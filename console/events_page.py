"""Events in the console: the list (with a calendar of the coming sessions), one event's page (sessions
with their seats, registrations with filters, the waitlist, attendance) and check-in by the code of a
scanned QR, with the API's own rules (`api/routes/events.py`). The planner's forms are in
`console/event_editor.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aftercare.events import registrations as regs
from aftercare.events.errors import EventError
from aftercare.events.store import event_view
from api.deps import get_services
from api.routes.events import check_in_by_code, read_events
from console.auth import ConsoleUser
from console.forms import read_form
from console.rendering import render
from models.event_api import CheckInRequest, EventView
from models.event_tables import EventRegistration
from models.zones import zone_info

router = APIRouter(prefix="/console/events", include_in_schema=False)
WAITING = ("offered", "waitlisted")


@dataclass(frozen=True)
class EventPage:
    """An event with its registrations: the live ones, and the waitlist in its order."""

    event: EventView
    registrations: list[EventRegistration]
    waitlist: list[EventRegistration]


async def load_event(request: Request, key: str) -> EventView | None:
    """The event as the API shows it, or None."""
    async with get_services(request).sessions() as session:
        try:
            return await event_view(session, key)
        except EventError:
            return None


async def _event_page(request: Request, key: str) -> EventPage | None:
    async with get_services(request).sessions() as session:
        try:
            event = await event_view(session, key)
        except EventError:
            return None
        rows = list(await regs.list_registrations(session, key))
    waiting = sorted((r for r in rows if r.status in WAITING), key=lambda r: (r.status != "offered", r.seq))
    return EventPage(event, [r for r in rows if r.status not in WAITING], waiting)


def _filters(request: Request) -> dict[str, str]:
    """The registrations' filters of the page's query (status, session)."""
    return {
        name: request.query_params.get(name, "")[:64]
        for name in ("status", "session")
        if request.query_params.get(name)
    }


async def event_page_response(
    request: Request, key: str, *, refused: str | None = None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    """The event's page (a 404 page for an unknown event), with a refusal shown at the top if any."""
    page = await _event_page(request, key)
    if page is None:
        return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
    return render(
        request, "event.html", _page_context(page, request, refused=refused, **extra), status_code=status_code
    )


@router.get("", response_class=HTMLResponse)
async def events(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every event, with each session's seats, and the coming sessions by day (a calendar)."""
    async with get_services(request).sessions() as session:
        listed = await read_events(session)
    now = datetime.now(UTC)
    coming = sorted(
        (
            (sitting.start.astimezone(zone_info(item.timezone)), item, sitting)
            for item in listed.items
            if item.status in ("draft", "published")
            for sitting in item.sessions
            if sitting.end > now
        ),
        key=lambda entry: entry[2].start,
    )
    days: dict[str, list[tuple[datetime, EventView, Any]]] = {}
    for entry in coming:
        days.setdefault(entry[0].strftime("%A %d %B %Y"), []).append(entry)
    return render(request, "events.html", {"events": listed.items, "days": days})


def _page_context(page: EventPage, request: Request, **extra: Any) -> dict[str, Any]:
    filters = _filters(request)
    shown = [
        r
        for r in page.registrations
        if r.status == filters.get("status", r.status)
        and r.session_id == filters.get("session", r.session_id)
    ]
    context = {
        "page": page,
        "errors": {},
        "code": "",
        "filters": filters,
        "shown": shown,
        "statuses": ("registered", "attended", "no_show", "cancelled"),
        "export": urlencode(filters),
    }
    return context | extra


@router.get("/{key}", response_class=HTMLResponse)
async def event(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The event: its sessions' seats, its registrations, its waitlist, and check-in."""
    return await event_page_response(request, key)


@router.post("/{key}/check-in", response_class=HTMLResponse)
async def check_in(request: Request, key: str, user: ConsoleUser, background: BackgroundTasks) -> Response:
    """Check in the registration whose QR code was scanned (or its code typed); a forged code, another
    event's or a cancelled registration's is shown by the field."""
    form = await read_form(request)
    code = str(form.get("code") or "").strip()[:200]
    on_screen = form.get("back") == "check-in"  # from the check-in screen: back to it
    services = get_services(request)
    try:
        async with services.sessions() as session:
            checked = await check_in_by_code(key, CheckInRequest(code=code), session, services, background)
    except HTTPException as error:
        errors = {"code": problem_text(error)}
        if on_screen:
            event = await load_event(request, key)
            if event is None:
                return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
            context = {"event": event, "q": "", "found": [], "errors": errors, "code": code}
            return render(request, "event_check_in.html", context, status_code=422)
        return await event_page_response(request, key, errors=errors, code=code, status_code=422)
    where = "/check-in" if on_screen else ""
    return RedirectResponse(
        f"/console/events/{key}{where}?checked_in={checked.registration_id}", status_code=303
    )


def problem_text(error: HTTPException) -> str:
    """An API refusal as one line."""
    if isinstance(error.detail, list):
        return "; ".join(str(problem.get("msg")) for problem in error.detail if isinstance(problem, dict))
    return str(error.detail)
