"""The preference centre's data: what a patient chose (consent per channel and purpose, preferred
channel and language, quiet hours, a pause), read from and written to the same records the send
decision reads (consent events and patient attributes), so a change holds from the next send."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.facts import (
    PAUSED_UNTIL_ATTRIBUTE,
    PREFERRED_CHANNEL_ATTRIBUTE,
    PREFERRED_LANGUAGE_ATTRIBUTE,
    QUIET_HOURS_ATTRIBUTE,
    PatientFacts,
    load_facts,
)
from aftercare.guardrails.pause import paused_until
from aftercare.patient_links.catalogue import LANGUAGES, language_of
from aftercare.store.attributes import set_attributes
from aftercare.store.consents import record_consent
from models.journey import CHANNELS, PURPOSES, Channel
from models.tables import Patient

SOURCE = "preference-centre"
MAX_PAUSE_DAYS = 90
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# Consent is asked per channel a message or a call may use: the sending channels and voice calls.
CONSENT_CHANNELS: tuple[Channel, ...] = (*CHANNELS, "voice")


@dataclass(frozen=True)
class Preferences:
    """A patient's choices. `allowed` holds the (channel, purpose) pairs they receive."""

    allowed: frozenset[tuple[str, str]]
    channel: str = ""
    language: str = "en"
    quiet_start: str = ""
    quiet_end: str = ""
    paused_until: datetime | None = None


@dataclass
class Submitted:
    """A posted preference form: the choices, the pause asked for, and the errors by field."""

    preferences: Preferences
    pause_days: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _allowed(facts: PatientFacts, channel: str, purpose: str, opt_in: frozenset[str]) -> bool:
    if purpose in opt_in:
        granted = facts.consent_for(channel, purpose, exact_purpose=True)
        return granted is not None and granted.status == "granted"
    consent = facts.consent_for(channel, purpose)
    return consent is None or consent.status != "revoked"


async def read_preferences(
    session: AsyncSession, patient: Patient, opt_in: frozenset[str], now: datetime
) -> Preferences:
    """The patient's current choices, as the send decision sees them."""
    facts = (await load_facts(session, [patient], channels=()))[patient.id]
    attributes = facts.attributes
    quiet = attributes.get(QUIET_HOURS_ATTRIBUTE)
    start, _, end = quiet.partition("-") if isinstance(quiet, str) and quiet != "none" else ("", "", "")
    channel = attributes.get(PREFERRED_CHANNEL_ATTRIBUTE)
    language = attributes.get(PREFERRED_LANGUAGE_ATTRIBUTE) or patient.language or "en"
    return Preferences(
        allowed=frozenset(
            (c, p) for c in CONSENT_CHANNELS for p in PURPOSES if _allowed(facts, c, p, opt_in)
        ),
        channel=channel if isinstance(channel, str) else "",
        language=language_of(str(language)),
        quiet_start=start,
        quiet_end=end,
        paused_until=paused_until(facts, now),
    )


def parse_form(fields: dict[str, list[str]]) -> Submitted:
    """The choices of a posted form, validated; nothing is written while `errors` is not empty."""
    one = {name: values[-1].strip() for name, values in fields.items() if values}
    errors: dict[str, str] = {}
    allowed = frozenset(
        (channel, purpose)
        for value in fields.get("allow", [])
        for channel, _, purpose in [value.partition(":")]
        if channel in CONSENT_CHANNELS and purpose in PURPOSES
    )
    channel = one.get("channel", "")
    if channel and channel not in CHANNELS:
        errors["channel"] = "error.channel"
    language = one.get("language", "en")
    if language not in LANGUAGES:
        errors["language"] = "error.language"
    start, end = one.get("quiet_start", ""), one.get("quiet_end", "")
    if (start or end) and not (_TIME.match(start) and _TIME.match(end)):
        errors["quiet"] = "error.quiet"
    pause_days: int | None = None
    pause = one.get("pause_days", "")
    if pause:
        if not pause.isdigit() or int(pause) > MAX_PAUSE_DAYS:
            errors["pause"] = "error.pause"
        else:
            pause_days = int(pause)
    preferences = Preferences(allowed, channel, language, start, end)
    return Submitted(preferences, pause_days, errors)


async def save_preferences(
    session: AsyncSession,
    patient_id: str,
    opt_in: frozenset[str],
    submitted: Submitted,
    now: datetime,
) -> list[str]:
    """Record what the submitted choices change (consent events with source `preference-centre`, and
    the attributes the send decision reads); the names of the changes, for the audit trail. The
    choices they are compared with are read in this transaction under a lock of the patient's
    preferences, so two saves at once apply one after the other: the second records only what the
    first left different (a double submit records its changes once)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"preferences:{patient_id}"))))
    patient = await session.get(Patient, patient_id)
    if patient is None:
        return []
    before = await read_preferences(session, patient, opt_in, now)
    after = submitted.preferences
    changes: list[str] = []
    for channel in CONSENT_CHANNELS:
        for purpose in PURPOSES:
            wanted = (channel, purpose) in after.allowed
            if wanted != ((channel, purpose) in before.allowed):
                status = "granted" if wanted else "revoked"
                await record_consent(session, [patient_id], channel, status, SOURCE, purpose=purpose)
                changes.append(f"consent:{channel}:{purpose}:{status}")
    attributes: dict[str, object] = {}
    if after.channel != before.channel:
        attributes[PREFERRED_CHANNEL_ATTRIBUTE] = after.channel or None
    if after.language != before.language:
        attributes[PREFERRED_LANGUAGE_ATTRIBUTE] = after.language
    if (after.quiet_start, after.quiet_end) != (before.quiet_start, before.quiet_end):
        quiet = f"{after.quiet_start}-{after.quiet_end}" if after.quiet_start else "none"
        attributes[QUIET_HOURS_ATTRIBUTE] = quiet
    if submitted.pause_days is not None:
        until = now + timedelta(days=submitted.pause_days) if submitted.pause_days else None
        attributes[PAUSED_UNTIL_ATTRIBUTE] = until.isoformat() if until else None
    await set_attributes(session, patient_id, attributes, source=SOURCE)
    return changes + sorted(attributes)
