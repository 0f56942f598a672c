"""The event planner's side of events in the console: a new event with its sessions (a draft), publish
and cancel, changing its title, description or venue, moving or resizing a session, closing a session
with attendance, the registrations as CSV, and a check-in screen for a tablet (search by name or id, or
scan the QR code). Each change goes through the API's own route code (`api/routes/events.py`): the same
checks, the same outbox, the same audit; a refusal shows next to its field and nothing is written."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import or_, select

from aftercare.events.errors import EventNotFound
from aftercare.events.store import get_event
from api.deps import get_services
from api.routes.events import cancel, check_in, close, patch_event, patch_session, post_event, publish
from console.auth import ConsoleUser
from console.events_page import event_page_response, load_event, problem_text
from console.forms import read_form
from console.rendering import render
from models.event_api import EventChange, EventIn, SessionChange
from models.event_tables import EventRegistration
from models.tables import Patient
from models.zones import known_zone, zone_info

router = APIRouter(prefix="/console/events", include_in_schema=False)

SESSION_ROWS = 3
EVENT_FIELDS = ("key", "title", "description", "kind", "timezone", "venue-name", "venue-address")
SESSION_FIELDS = ("id", "start", "end", "capacity", "room")
CSV_COLUMNS = (
    "registration_id",
    "patient_id",
    "session_id",
    "status",
    "companions",
    "source",
    "created_at",
    "checked_in_at",
    "offer_expires_at",
    "cancel_reason",
)
LIVE = ("registered", "offered", "attended")


def _local(value: str, zone: str) -> datetime | str:
    """A `datetime-local` value read in the event's time zone (an unreadable one is passed on as is,
    for the validation to name)."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=zone_info(zone))
    except ValueError:  # an unreadable time, or a zone that is not one (`UnknownZone`)
        return value


def event_document(values: dict[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The `POST /v1/events` body a filled form stands for (the session rows with an id), and the form
    row of each of its sessions."""
    zone = values.get("timezone", "")
    if not known_zone(zone):
        zone = "UTC"  # the time zone's own error is named by the validation
    sessions = []
    rows = []
    for row in range(SESSION_ROWS):
        cell = {name: values.get(f"sessions-{row}-{name}", "") for name in SESSION_FIELDS}
        if not cell["id"]:
            continue
        rows.append(row)
        sessions.append(
            {
                "id": cell["id"],
                "start": _local(cell["start"], zone),
                "end": _local(cell["end"], zone),
                "capacity": cell["capacity"] or None,
                "room": cell["room"] or None,
            }
        )
    document: dict[str, Any] = {
        "key": values.get("key", ""),
        "title": values.get("title", ""),
        "timezone": values.get("timezone", ""),
        "kind": values.get("kind") or "in_person",
        "description": values.get("description") or None,
        "sessions": sessions,
    }
    if values.get("venue-name"):
        document["venue"] = {"name": values["venue-name"], "address": values.get("venue-address") or None}
    return document, rows


def field_of(loc: tuple[str | int, ...], rows: list[int]) -> str:
    """The form field a problem at `loc` of the document belongs to (`rows`: each session's form row)."""
    parts = [str(part) for part in loc if part != "body"]
    if parts[:1] == ["sessions"] and len(parts) >= 2 and parts[1].isdigit():
        index = int(parts[1])
        row = rows[index] if index < len(rows) else 0
        name = parts[2] if len(parts) > 2 and parts[2] in SESSION_FIELDS else "end"
        return f"sessions-{row}-{name}"
    if parts[:1] == ["sessions"]:
        return "sessions-0-id"
    if parts[:1] == ["venue"]:
        return "venue-name"
    return parts[0] if parts and parts[0] in EVENT_FIELDS else "key"


def _errors(problems: list[tuple[tuple[str | int, ...], str]], rows: list[int]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for loc, message in problems:
        errors.setdefault(field_of(loc, rows), message)
    return errors


def _editor(request: Request, values: dict[str, str], errors: dict[str, str]) -> HTMLResponse:
    context = {"values": values, "errors": errors, "rows": range(SESSION_ROWS), "fields": SESSION_FIELDS}
    return render(request, "event_editor.html", context, status_code=422 if errors else 200)


@router.get("/new", response_class=HTMLResponse)
async def new_event(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The form of a new event (a draft) with up to three sessions."""
    return _editor(request, {"timezone": "America/New_York", "kind": "in_person"}, {})


@router.post("", response_class=HTMLResponse)
async def create_event(request: Request, user: ConsoleUser) -> Response:
    """Create the draft event; each problem is shown by its field and nothing is saved."""
    form = await read_form(request)
    values = {name: value.strip() for name, value in form.items() if name != "csrf"}
    document, rows = event_document(values)
    try:
        body = EventIn.model_validate(document)
    except ValidationError as error:
        problems = [(tuple(item["loc"]), str(item["msg"])) for item in error.errors()]
        return _editor(request, values, _errors(problems, rows))
    try:
        async with get_services(request).sessions() as session:
            await post_event(body, session)
    except HTTPException as refused:
        if isinstance(refused.detail, list):
            problems = [(tuple(p.get("loc", ())), str(p.get("msg"))) for p in refused.detail]
        else:
            problems = [(("key",), problem_text(refused))]
        return _editor(request, values, _errors(problems, rows))
    return RedirectResponse(f"/console/events/{body.key}", status_code=303)


async def _done_or_refused(request: Request, key: str, work: Any, anchor: str = "") -> Response:
    """Run an API operation; back to the event's page, with the refusal shown when there was one."""
    services = get_services(request)
    try:
        async with services.sessions() as session:
            await work(session, services)
    except HTTPException as refused:
        if refused.status_code == 404:
            return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
        return await event_page_response(request, key, refused=problem_text(refused), status_code=409)
    return RedirectResponse(f"/console/events/{key}?done=1{anchor}", status_code=303)


@router.post("/{key}/publish", response_class=HTMLResponse)
async def publish_event(request: Request, key: str, user: ConsoleUser) -> Response:
    """Open the event for registration."""
    return await _done_or_refused(request, key, lambda session, _services: publish(key, session))


@router.post("/{key}/cancel", response_class=HTMLResponse)
async def cancel_event(request: Request, key: str, user: ConsoleUser) -> Response:
    """Cancel the event: every registration is cancelled and told so."""
    return await _done_or_refused(request, key, lambda session, services: cancel(key, session, services))


DETAIL_FIELDS = ("title", "description", "venue-name", "venue-address")


@router.post("/{key}/details", response_class=HTMLResponse)
async def change_details(request: Request, key: str, user: ConsoleUser) -> Response:
    """Change the event's title, description or venue (an empty venue clears it; its accessibility
    note is kept); the registered are told of a new title or venue."""
    form = await read_form(request)
    values = {name: form.get(name, "").strip() for name in DETAIL_FIELDS}
    services = get_services(request)
    async with services.sessions() as session:
        try:
            event = await get_event(session, key)
        except EventNotFound:
            return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
    venue = None
    if values["venue-name"]:
        accessibility = (event.venue or {}).get("accessibility")
        venue = {"name": values["venue-name"], "address": values["venue-address"] or None}
        venue |= {"accessibility": accessibility} if accessibility else {}
    try:
        change = EventChange.model_validate(
            {"title": values["title"], "description": values["description"] or None, "venue": venue}
        )
    except ValidationError as error:
        errors: dict[str, str] = {}
        for item in error.errors():
            place = [str(part) for part in item["loc"]]
            name = "venue-name" if place[:1] == ["venue"] else place[0] if place else "title"
            errors.setdefault(name if name in DETAIL_FIELDS else "title", str(item["msg"]))
        return await event_page_response(
            request, key, status_code=422, details_values=values, details_errors=errors
        )
    return await _done_or_refused(
        request, key, lambda session, services: patch_event(key, change, session, services)
    )


@router.post("/{key}/sessions/{session_id}", response_class=HTMLResponse)
async def change_session(request: Request, key: str, session_id: str, user: ConsoleUser) -> Response:
    """Move, re-room or resize a session (times in the event's zone); the registered are told."""
    form = await read_form(request)
    services = get_services(request)
    async with services.sessions() as session:
        try:
            zone = (await get_event(session, key)).timezone
        except EventNotFound:
            return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
    try:
        change = SessionChange.model_validate(
            {
                "start": _local(form.get("start", "").strip(), zone) or None,
                "end": _local(form.get("end", "").strip(), zone) or None,
                "capacity": form.get("capacity", "").strip() or None,
                "room": form.get("room", "").strip() or None,
            }
        )
    except ValidationError as error:
        message = "; ".join(str(item["msg"]) for item in error.errors())
        return await event_page_response(request, key, refused=message, status_code=422)
    return await _done_or_refused(
        request,
        key,
        lambda session, services: patch_session(key, session_id, change, session, services),
    )


@router.post("/{key}/sessions/{session_id}/close", response_class=HTMLResponse)
async def close_session(request: Request, key: str, session_id: str, user: ConsoleUser) -> Response:
    """Close the session with attendance: whoever did not check in is a no-show."""
    return await _done_or_refused(
        request, key, lambda session, services: close(key, session_id, session, services)
    )


async def _registrations(
    request: Request, key: str, *, status: str | None, session_id: str | None, query: str | None = None
) -> list[tuple[EventRegistration, Patient | None]]:
    statement = (
        select(EventRegistration, Patient)
        .outerjoin(Patient, Patient.id == EventRegistration.patient_id)
        .where(EventRegistration.event_key == key)
        .order_by(EventRegistration.seq)
    )
    if status:
        statement = statement.where(EventRegistration.status == status)
    if session_id:
        statement = statement.where(EventRegistration.session_id == session_id)
    if query:
        like = f"%{query.replace('%', '').replace('_', '')}%"
        statement = statement.where(
            or_(
                EventRegistration.patient_id.ilike(like),
                Patient.given.ilike(like),
                Patient.family.ilike(like),
                Patient.name.ilike(like),
            )
        )
    async with get_services(request).sessions() as session:
        return [(row[0], row[1]) for row in await session.execute(statement.limit(5000))]


@router.get("/{key}/registrations.csv")
async def registrations_csv(
    request: Request, key: str, user: ConsoleUser, status: str = "", session: str = ""
) -> Response:
    """The registrations (with the page's filters) as CSV."""
    rows = await _registrations(request, key, status=status[:16] or None, session_id=session[:64] or None)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for registration, _patient in rows:
        writer.writerow(
            [
                registration.id,
                registration.patient_id,
                registration.session_id,
                registration.status,
                registration.companions,
                registration.source,
                registration.created_at.isoformat(),
                registration.checked_in_at.isoformat() if registration.checked_in_at else "",
                registration.offer_expires_at.isoformat() if registration.offer_expires_at else "",
                registration.cancel_reason or "",
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_file_name(key)}-registrations.csv"'},
    )


def _file_name(key: str) -> str:
    """The event key as a download's file name: letters, digits, `.`, `_` and `-` only (a header is
    Latin-1, and a key from a URL may hold anything)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)[:64] or "event"


async def _check_in_screen(
    request: Request, key: str, query: str, errors: dict[str, str], status_code: int = 200
) -> HTMLResponse:
    """The check-in screen with the live registrations matching `query` (none without one)."""
    event = await load_event(request, key)
    if event is None:
        return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
    found = await _registrations(request, key, status=None, session_id=None, query=query) if query else []
    context = {
        "event": event,
        "q": query,
        "found": [(r, p) for r, p in found if r.status in LIVE],
        "errors": errors,
        "code": "",
    }
    return render(request, "event_check_in.html", context, status_code=status_code)


@router.get("/{key}/check-in", response_class=HTMLResponse)
async def check_in_screen(request: Request, key: str, user: ConsoleUser, q: str = "") -> HTMLResponse:
    """The check-in screen: scan the QR code, or search a patient by name or id and check them in."""
    return await _check_in_screen(request, key, q.strip()[:100], {})


@router.post("/{key}/registrations/{registration_id}/check-in", response_class=HTMLResponse)
async def check_in_one(
    request: Request, key: str, registration_id: str, user: ConsoleUser, background: BackgroundTasks
) -> Response:
    """Check in the registration picked from the search; back to the check-in screen."""
    form = await read_form(request)
    services = get_services(request)
    query = form.get("q", "").strip()[:100]
    try:
        async with services.sessions() as session:
            await check_in(key, registration_id, session, services, background)
    except HTTPException as refused:
        if refused.status_code == 404:
            return render(request, "not_found.html", {"what": f"event {key}"}, status_code=404)
        return await _check_in_screen(
            request, key, query, {registration_id: problem_text(refused)}, status_code=409
        )
    return RedirectResponse(
        f"/console/events/{key}/check-in?q={quote(query)}&checked_in={quote(registration_id)}",
        status_code=303,
    )
