"""A facility's voice: who a message to one of its patients comes from, and when it may arrive.

A patient who belongs to several facilities hears from the one that manages them
(`Patient.managingOrganization`), else the one they were placed in first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.policy import parse_quiet_hours
from models.facility_tables import Facility, PatientFacility


@dataclass(frozen=True)
class Voice:
    """The facility a message is sent on behalf of, with its sender identity, clock and calendar."""

    facility: str
    timezone: str
    quiet_hours: tuple[time, time] | None
    senders: dict[str, Any]
    help_phone: str | None
    holidays: tuple[str, ...] = ()
    name: str | None = None
    country: str | None = None
    subdivision: str | None = None

    def sender(self, channel: str) -> str | None:
        """The sender for a channel: an SMS from-number or messaging service, an email from-address, the
        push app a notification comes as (its title when the message has none)."""
        if channel == "push":
            app = self.senders.get("push_app")
            return app if isinstance(app, str) else None
        identity = self.senders.get(channel)
        if not isinstance(identity, dict):
            return None
        sender = identity.get("from") or identity.get("messaging_service_sid")
        return sender if isinstance(sender, str) else None

    def reply_to(self) -> str | None:
        """Where replies to its emails go."""
        identity = self.senders.get("email")
        reply_to = identity.get("reply_to") if isinstance(identity, dict) else None
        return reply_to if isinstance(reply_to, str) else None


def voice_of(facility: Facility) -> Voice:
    """A stored facility's voice."""
    return Voice(
        facility=facility.key,
        timezone=facility.timezone,
        quiet_hours=parse_quiet_hours(facility.quiet_hours) if facility.quiet_hours else None,
        senders=dict(facility.senders or {}),
        help_phone=facility.help_phone,
        holidays=tuple(facility.holidays or ()),
        name=facility.name,
        country=facility.country,
        subdivision=facility.subdivision,
    )


# The facility a patient hears from first: the managing organization's, then the earliest placement.
PRIMARY_ORDER = (
    case((PatientFacility.source == "managing_organization", 0), else_=1),
    PatientFacility.added_at,
    PatientFacility.facility,
)


async def voices_of(session: AsyncSession, patient_ids: Sequence[str]) -> dict[str, Voice]:
    """Each patient's voice (patients placed in no facility are left out: they get the install's)."""
    if not patient_ids:
        return {}
    rows = await session.execute(
        select(PatientFacility.patient_id, Facility)
        .join(Facility, Facility.key == PatientFacility.facility)
        .where(PatientFacility.patient_id.in_(list(patient_ids)))
        .order_by(PatientFacility.patient_id, *PRIMARY_ORDER)
    )
    voices: dict[str, Voice] = {}
    for patient_id, facility in rows:
        if patient_id not in voices:
            voices[patient_id] = voice_of(facility)
    return voices
