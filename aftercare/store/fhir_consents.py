"""Consent from FHIR `Consent` resources, appended to the consent history when a version becomes current.

An active Consent's `provision.type` (`permit` / `deny`) grants or withdraws consent for the patient.
Channels come from `provision.code` codes `sms`, `email`, `letter`, `push` (none: every channel);
purposes from `provision.purpose` (an Aftercare purpose code, or v3 PurposeOfUse `TREAT`,
`HMARKT`, `HRESCH`; none: every purpose); a `provision.code` code `phi` makes it consent to receive
PHI on those channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.journey import CHANNELS, PURPOSES
from models.tables import ConsentEvent

SOURCE = "fhir"
PURPOSE_OF_USE = {"TREAT": "care_coordination", "HMARKT": "marketing", "HRESCH": "surveys"}


def _codes(concepts: Sequence[dict[str, Any]]) -> list[str]:
    return [str(coding.get("code")) for concept in concepts for coding in concept.get("coding") or []]


def consent_events_of(resource: dict[str, Any]) -> list[ConsentEvent]:
    """The consent entries an active `Consent` resource states (none for any other status)."""
    patient = str((resource.get("patient") or {}).get("reference") or "")
    provision = resource.get("provision") or {}
    if resource.get("status") != "active" or not patient.startswith("Patient/"):
        return []
    if provision.get("type") not in ("permit", "deny"):
        return []
    codes = _codes(provision.get("code") or [])
    channels: list[str] = [code for code in codes if code in CHANNELS] or ["*"]
    purposes = [
        PURPOSE_OF_USE.get(str(coding.get("code")), str(coding.get("code")))
        for coding in provision.get("purpose") or []
    ]
    purposes = [purpose for purpose in purposes if purpose in PURPOSES] or ["*"]
    if "phi" in codes:
        purposes = ["phi"]
    status = "granted" if provision["type"] == "permit" else "revoked"
    detail = f"Consent/{resource.get('id')}"
    return [
        ConsentEvent(
            patient_id=patient.removeprefix("Patient/"),
            channel=channel,
            purpose=purpose,
            status=status,
            source=SOURCE,
            detail=detail,
        )
        for channel in channels
        for purpose in purposes
    ]


async def record_fhir_consents(session: AsyncSession, resources: Sequence[dict[str, Any]]) -> None:
    """Append the consent entries of the `Consent` resources among these, in one flush."""
    events = [
        event
        for resource in resources
        if resource.get("resourceType") == "Consent"
        for event in consent_events_of(resource)
    ]
    if events:
        session.add_all(events)
        await session.flush()
