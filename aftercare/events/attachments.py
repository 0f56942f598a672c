"""The files an email about a registration carries: the calendar invite (RFC 5545, `METHOD:REQUEST`, or
`CANCEL` once cancelled) and the check-in QR code, the same as `.../invite.ics` and `.../qr.png`
serve."""

from __future__ import annotations

import base64
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.events.invites import check_in_code, check_in_qr_png, invite_ics
from models.event_tables import Event, EventRegistration, EventSession


class RegistrationUnknown(LookupError):
    """The registration an email's attachments are for is not recorded."""


def _file(filename: str, content_type: str, content: bytes) -> dict[str, str]:
    return {"filename": filename, "content_type": content_type, "content": base64.b64encode(content).decode()}


async def registration_attachments(
    session: AsyncSession,
    registration_id: str,
    kinds: Collection[str],
    *,
    secret: bytes,
    organiser_email: str | None = None,
) -> list[dict[str, str]]:
    """The files of `kinds` (`event_invite`, `check_in_qr`) for the registration, base64."""
    registration = await session.get(EventRegistration, registration_id)
    if registration is None:
        raise RegistrationUnknown(f"no event registration {registration_id!r}")
    files = []
    if "event_invite" in kinds:
        event = await session.get(Event, registration.event_key)
        sitting = await session.get(EventSession, (registration.event_key, registration.session_id))
        if event is None or sitting is None:  # a registration's event and session are never deleted
            raise RegistrationUnknown(f"the event of registration {registration_id!r} is gone")
        calendar = invite_ics(event, sitting, registration, organiser_email=organiser_email)
        method = "CANCEL" if b"METHOD:CANCEL" in calendar else "REQUEST"
        files.append(_file(f"{event.key}.ics", f"text/calendar; method={method}", calendar))
    if "check_in_qr" in kinds:
        files.append(
            _file("check-in.png", "image/png", check_in_qr_png(check_in_code(registration.id, secret)))
        )
    return files
