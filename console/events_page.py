"""Events in the console: the list, one event's page (sessions with their seats, registrations, the
waitlist) and check-in by the code of a scanned QR, with the API's own rules (`api/routes/events.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
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

router = APIRouter(prefix="/console/events", include_in_schema=False)
WAITING = ("offered", "waitlisted")


@dataclass(frozen=True)
class EventPage:
    """An event with its registrations: the live ones, and the waitlist in its order."""

    event: EventView
    registrations: list[EventRegistration]
    waitlist: list[EventRegistration]


async def _event_page(request: Request, key: str) -> EventPage | None:
    async with get_services(request).sessions() as session:
        try:
            event = await event_view(session, key)
        except EventError:
            return None
        rows = list(await regs.list_registrations(session, key))
    waiting = sorted((r for r in rows if r.status in WAITING), key=lambda r: (r.status != "offered", r.seq))
    return EventPage(event, [r for r in rows if r.status not in WAITING], waiting)


@router.get("", response_class=HTMLResponse)
async def events(request: Request, user: ConsoleUser) -> HTMLResponse:
    """Every event, with each session's seats."""
    async with get_services(request).sessions() as session:
        listed = await read_events(session)
    return render(request, "events.html", {"events": listed.items})


def _page_context(page: EventPage, **extra: Any) -> dict[str, Any]:
    return {"page": page, "errors": {}, "code": "", **extra}


@router.get("/{key}", response_class=HTMLResponse)
async def event(request: Request, key: str, user: ConsoleUser) -> HTMLResponse:
    """The event: its sessions' seats, its registrations, its waitlist, and check-in."""
    page = await _event_page(request, key)
    if page is None:
        return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
    return render(request, "event.html", _page_context(page))


@router.post("/{key}/check-in", response_class=HTMLResponse)
async def check_in(request: Request, key: str, user: ConsoleUser) -> Response:
    """Check in the registration whose QR code was scanned (or its code typed); a forged code, another
    event's or a cancelled registration's is shown by the field."""
    code = str((await read_form(request)).get("code") or "").strip()[:200]
    services = get_services(request)
    try:
        async with services.sessions() as session:
            checked = await check_in_by_code(key, CheckInRequest(code=code), session, services)
    except HTTPException as error:
        page = await _event_page(request, key)
        if page is None:
            return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
        context = _page_context(page, errors={"code": _message(error)}, code=code)
        return render(request, "event.html", context, status_code=422)
    return RedirectResponse(f"/console/events/{key}?checked_in={checked.registration_id}", status_code=303)


def _message(error: HTTPException) -> str:
    if isinstance(error.detail, list):
        return "; ".join(str(problem.get("msg")) for problem in error.detail if isinstance(problem, dict))
    return str(error.detail)
