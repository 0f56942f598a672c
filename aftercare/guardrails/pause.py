"""A pause the patient chose (in the preference centre): their messages wait until it ends."""

from __future__ import annotations

from datetime import datetime

from aftercare.guardrails.decision import Decision
from aftercare.guardrails.facts import PAUSED_UNTIL_ATTRIBUTE, PatientFacts


def paused_until(facts: PatientFacts, now: datetime) -> datetime | None:
    """The end of the patient's pause, if one is in force at `now`."""
    value = facts.attributes.get(PAUSED_UNTIL_ATTRIBUTE)
    if not isinstance(value, str):
        return None
    try:
        until = datetime.fromisoformat(value)
    except ValueError:
        return None
    return until if until.tzinfo is not None and until > now else None


def paused(facts: PatientFacts, now: datetime, urgent: str | None) -> Decision | None:
    """`defer` until the pause ends (None when there is none); an urgent send (`urgent` says why)
    goes anyway."""
    until = paused_until(facts, now)
    if until is None or urgent:
        return None
    return Decision(
        "defer", "paused", f"the patient paused their messages until {until.isoformat()}", until=until
    )
