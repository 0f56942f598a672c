"""An event's self-service page: register, choose a session, cancel, add the invite to a calendar.

Opened by a self-service link (`aftercare/events/links.py`); a tampered, foreign or expired link gets a
plain page saying so, never an error. Forms post and redirect back (POST-redirect-GET)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from aftercare.events import registrations as regs
from aftercare.events.consent import check_registration_consent
from aftercare.events.errors import EventError
from aftercare.events.invites import invite_ics
from aftercare.events.links import LinkClaims, LinkRefused, read_link_token
from aftercare.events.outbox import record_effects
from aftercare.events.store import get_event, sessions_of
from aftercare.security.rate_limit import RateLimiter, retry_after
from aftercare.settings import event_link_secret
from api.deps import ServicesDep
from api.routes.events import after_commit
from api.services import Services
from models.event_api import RegistrationIn
from models.event_tables import Event, EventRegistration, EventSession
from models.zones import zone_info
from patient_pages.pages import PAGE_CSP

router = APIRouter(prefix="/e", tags=["patient pages"], include_in_schema=False)
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
# Per client address: a page view or a form post every half second, bursts of 20.
_limiter = RateLimiter(rate=2.0, burst=20)
_STATUS_LABELS = {
    "registered": "you have a place",
    "waitlisted": "you are on the waiting list",
    "offered": "a place is offered to you",
    "attended": "you attended",
}
_REFUSED = {
    "invalid": (
        "This link does not work",
        "The link is not complete or was changed. Please use the link "
        "from your message exactly as it was sent, or ask your care team for a new one.",
    ),
    "expired": ("This link has expired", "Please ask your care team for a new link."),
    "limited": ("Please wait a moment", "There were too many requests. Please try again in a minute."),
    "gone": ("This event is not available", "The event was removed. Please ask your care team."),
}


@dataclass
class SessionChoice:
    """A session as the page offers it."""

    id: str
    label: str
    seats: str


@dataclass
class YourPlace:
    """The patient's live registration."""

    session_label: str
    status_label: str
    calendar: bool


@dataclass
class EventPage:
    """What the page shows."""

    base: str
    title: str
    description: str | None
    venue: str | None
    open: bool
    sessions: list[SessionChoice] = field(default_factory=list)
    registration: YourPlace | None = None
    notice: str | None = None
    error: str | None = None


def _label(sitting: EventSession, zone: str) -> str:
    start = sitting.start_at.astimezone(zone_info(zone))
    end = sitting.end_at.astimezone(zone_info(zone))
    return f"{start:%A %d %B %Y, %H:%M} to {end:%H:%M}"


def _render(name: str, status_code: int = 200, **values: object) -> HTMLResponse:
    html = _templates.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP})


def refused(reason: str, status_code: int, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The clear page for a link that cannot be used."""
    title, message = _REFUSED[reason]
    response = _render("refused.html", status_code, title=title, message=message)
    response.headers.update(headers or {})
    return response


def _claims(request: Request, services: Services, token: str) -> LinkClaims | HTMLResponse:
    client = request.client.host if request.client else "unknown"
    wait = _limiter.take(client)
    if wait:
        return refused("limited", 429, {"Retry-After": retry_after(wait)})
    try:
        return read_link_token(event_link_secret(services.settings), token)
    except LinkRefused as error:
        return refused(error.reason, 410 if error.reason == "expired" else 403)


async def _live_registration(services: Services, claims: LinkClaims) -> EventRegistration | None:
    async with services.sessions() as session:
        rows = await regs.list_registrations(session, claims.event_key)
    live = [r for r in rows if r.patient_id == claims.patient_id and r.status != "cancelled"]
    return live[-1] if live else None


async def _page(services: Services, claims: LinkClaims, token: str, **extra: str | None) -> EventPage | None:
    async with services.sessions() as session:
        try:
            event: Event = await get_event(session, claims.event_key)
        except EventError:
            return None
        sittings = await sessions_of(session, claims.event_key)
    mine = await _live_registration(services, claims)
    by_id = {s.id: s for s in sittings}
    venue = ", ".join(v for v in ((event.venue or {}).get("name"), (event.venue or {}).get("address")) if v)
    page = EventPage(
        base=f"/e/{token}",
        title=event.title,
        description=event.description,
        venue=venue or None,
        open=event.status == "published",
        sessions=[
            SessionChoice(
                s.id,
                _label(s, event.timezone),
                f"{s.capacity - s.seats_taken} places left" if s.seats_taken < s.capacity else "waiting list",
            )
            for s in sittings
            if s.closed_at is None
        ],
        **extra,  # type: ignore[arg-type]
    )
    if mine is not None:
        page.registration = YourPlace(
            session_label=_label(by_id[mine.session_id], event.timezone),
            status_label=_STATUS_LABELS.get(mine.status, mine.status),
            calendar=mine.status in ("registered", "offered", "attended"),
        )
    return page


@router.get("/{token}", response_class=HTMLResponse)
async def event_page(
    token: str, request: Request, services: ServicesDep, done: str | None = None
) -> Response:
    """The patient's page of the event."""
    claims = _claims(request, services, token)
    if isinstance(claims, HTMLResponse):
        return claims
    notices = {
        "registered": "You are registered.",
        "waitlisted": "You are on the waiting list.",
        "cancelled": "Your place is cancelled.",
    }
    page = await _page(services, claims, token, notice=notices.get(done or ""))
    if page is None:
        return refused("gone", 404)
    return _render("event.html", page=page, title=page.title)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {name: values[0] for name, values in parse_qs(body).items()}


@router.post("/{token}/register", response_class=HTMLResponse)
async def register(token: str, request: Request, services: ServicesDep) -> Response:
    """Register for the chosen session."""
    claims = _claims(request, services, token)
    if isinstance(claims, HTMLResponse):
        return claims
    session_id = (await _form(request)).get("session_id", "")
    try:
        body = RegistrationIn(patient_id=claims.patient_id, session_id=session_id, source="self_service")
        async with services.sessions.begin() as session:
            change = await regs.register(session, claims.event_key, body)
            await check_registration_consent(
                session, change.registration, body.channel, services.settings.guardrails
            )
            effects = await record_effects(session, claims.event_key, change.offers, change.notices)
    except (EventError, ValueError) as error:
        message = "Please choose a session." if not session_id else str(error)
        page = await _page(services, claims, token, error=message)
        if page is None:
            return refused("gone", 404)
        return _render("event.html", 422, page=page, title=page.title)
    await after_commit(services, effects)
    return RedirectResponse(f"/e/{token}?done={change.registration.status}", status_code=303)


@router.post("/{token}/cancel", response_class=HTMLResponse)
async def cancel(token: str, request: Request, services: ServicesDep) -> Response:
    """Cancel the patient's place."""
    claims = _claims(request, services, token)
    if isinstance(claims, HTMLResponse):
        return claims
    mine = await _live_registration(services, claims)
    if mine is not None:
        was_offered = mine.status == "offered"
        ttl = timedelta(hours=services.settings.event_offer_hours)
        try:
            async with services.sessions.begin() as session:
                change = await regs.cancel_registration(session, claims.event_key, mine.id, ttl=ttl)
                settled = change.registration if was_offered else None
                effects = await record_effects(
                    session, claims.event_key, change.offers, change.notices, settled=settled
                )
        except EventError:
            return RedirectResponse(f"/e/{token}", status_code=303)
        await after_commit(services, effects)
    return RedirectResponse(f"/e/{token}?done=cancelled", status_code=303)


@router.get("/{token}/invite.ics")
async def calendar(token: str, request: Request, services: ServicesDep) -> Response:
    """The invite of the patient's place, for their calendar."""
    claims = _claims(request, services, token)
    if isinstance(claims, HTMLResponse):
        return claims
    mine = await _live_registration(services, claims)
    if mine is None:
        return RedirectResponse(f"/e/{token}", status_code=303)
    async with services.sessions() as session:
        event = await get_event(session, claims.event_key)
        sitting = next(s for s in await sessions_of(session, claims.event_key) if s.id == mine.session_id)
    return Response(
        invite_ics(event, sitting, mine),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invite.ics"'},
    )
