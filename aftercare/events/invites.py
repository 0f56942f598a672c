"""iCalendar invites (RFC 5545) and check-in QR codes for registrations.

The UID of a registration's invite never changes, so a calendar replaces its copy when the event moves
(a higher SEQUENCE) and removes it on METHOD:CANCEL. Times are in the event's zone with its VTIMEZONE."""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import UTC, datetime

import segno
from icalendar import Calendar, vCalAddress, vText
from icalendar import Event as VEvent

from models.event_tables import Event, EventRegistration, EventSession
from models.zones import zone_info

PRODID = "-//Aftercare//Events//EN"
INVITE_DOMAIN = "events.aftercare"


def invite_uid(registration: EventRegistration) -> str:
    """The stable UID of a registration's invite."""
    return f"{registration.id}@{INVITE_DOMAIN}"


def invite_ics(
    event: Event,
    sitting: EventSession,
    registration: EventRegistration,
    *,
    organiser_email: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The invite: METHOD:REQUEST while the registration is live, METHOD:CANCEL once it is cancelled
    (or the event is)."""
    cancelled = registration.status == "cancelled" or event.status == "cancelled"
    zone = zone_info(event.timezone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    vevent = VEvent()
    vevent.add("uid", invite_uid(registration))
    vevent.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    vevent.add("dtstart", sitting.start_at.astimezone(zone))
    vevent.add("dtend", sitting.end_at.astimezone(zone))
    vevent.add("sequence", event.sequence)
    vevent.add("summary", event.title)
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if event.description:
        vevent.add("description", event.description)
    location = _location(event, sitting)
    if location:
        vevent["location"] = vText(location)
    if sitting.online_url:
        vevent.add("url", sitting.online_url)
    if organiser_email:
        organiser = vCalAddress(f"mailto:{organiser_email}")
        organiser.params["cn"] = vText(event.organiser_team or "Aftercare")
        vevent["organizer"] = organiser
    calendar.add_component(vevent)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def _location(event: Event, sitting: EventSession) -> str:
    venue = event.venue or {}
    parts = [venue.get("name"), sitting.room, venue.get("address")]
    if not any(parts) and sitting.online_url:
        return sitting.online_url
    return ", ".join(str(part) for part in parts if part)


def check_in_code(registration_id: str, secret: bytes) -> str:
    """The code in a registration's QR: its id and a MAC, so a guessed or altered code is refused."""
    mac = hmac.new(secret, registration_id.encode(), hashlib.sha256).hexdigest()[:16]
    return f"{registration_id}.{mac}"


def read_check_in_code(code: str, secret: bytes) -> str | None:
    """The registration id of a genuine code, else None."""
    registration_id, _, _mac = code.rpartition(".")
    if not registration_id or not hmac.compare_digest(check_in_code(registration_id, secret), code):
        return None
    return registration_id


def check_in_qr_png(code: str, *, scale: int = 6) -> bytes:
    """The QR code of a check-in code, as PNG."""
    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
