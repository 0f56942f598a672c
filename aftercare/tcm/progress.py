"""What happened in a TCM episode, read from evidence (pure): contact attempts, the first interactive
contact, the face-to-face visit, medication reconciliation and a 30-day readmission; from them the
episode's status and whether it is a candidate for CPT 99495 or 99496.

The contact requirement is met by an interactive contact by the deadline, or (as CMS allows) by two
timely documented unsuccessful attempts when the patient could not be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.zones import zone_info

READMISSION_DAYS = 30
# Care task outcomes that are contact attempts, and whether each reached the patient.
CALL_OUTCOMES = {"reached": True, "no_answer": False, "left_message": False}
# Automated voice calls (the `call` step) that rang the patient: answered is an interactive contact;
# unanswered, busy or taken by voicemail, a documented unsuccessful attempt. A failed call never rang.
VOICE_CALL_OUTCOMES = {"answered": True, "no_answer": False, "busy": False, "machine": False}
MEDICATION_RECONCILED = "medication_reconciled"
UNSUCCESSFUL_ATTEMPTS_NEEDED = 2


@dataclass(frozen=True)
class Attempt:
    """A contact attempt: a call task's outcome, an automated voice call's, or a patient's reply."""

    at: datetime
    kind: str  # call | reply
    outcome: str  # a call's outcome, or the reply's channel
    interactive: bool
    source: str  # `Task/<id>`, `VoiceCall/<message id>` or `InboundMessage/<provider id>`


@dataclass(frozen=True)
class Event:
    """Something that happened at a time, and the record it came from (`Type/id`)."""

    at: datetime
    source: str


@dataclass(frozen=True)
class Evidence:
    """Everything known about the patient after the discharge, in time order within each list."""

    attempts: Sequence[Attempt] = ()
    visits: Sequence[Event] = ()
    reconciliations: Sequence[Event] = ()
    admissions: Sequence[Event] = ()


@dataclass(frozen=True)
class Progress:
    """An episode's state as of `now`."""

    status: str  # open | closed | readmitted
    attempts: list[Attempt]
    contacted_at: datetime | None
    contact_met: bool
    contact_met_by: str | None  # interactive | attempts | None
    visit: Event | None
    visit_within_days: int | None
    medication_reconciled: Event | None
    readmission: Event | None
    billing_candidate: str | None  # 99496 | 99495 | None


def progress(
    *,
    discharged_at: datetime,
    contact_due_at: datetime,
    complexity: str,
    timezone: str,
    closed: bool,
    evidence: Evidence,
    now: datetime,
) -> Progress:
    """The episode's progress from its deadlines and evidence. A visit by day 7 (in the hospital's
    `timezone`) of a high-complexity episode is a 99496 candidate; any visit by day 14, a 99495 one."""
    attempts = sorted((a for a in evidence.attempts if a.at >= discharged_at), key=lambda a: (a.at, a.source))
    contact = next((a for a in attempts if a.interactive), None)
    timely_failures = [
        a for a in attempts if not a.interactive and a.kind == "call" and a.at <= contact_due_at
    ]
    met_by = None
    if contact is not None and contact.at <= contact_due_at:
        met_by = "interactive"
    elif len(timely_failures) >= UNSUCCESSFUL_ATTEMPTS_NEEDED:
        met_by = "attempts"
    window_end = discharged_at + timedelta(days=READMISSION_DAYS)
    readmission = _first(evidence.admissions, after=discharged_at, until=window_end, strictly=True)
    visit = _first(evidence.visits, after=discharged_at, until=window_end)
    within = None
    if visit is not None:
        zone = zone_info(timezone)
        days = (visit.at.astimezone(zone).date() - discharged_at.astimezone(zone).date()).days
        within = 7 if days <= 7 else 14 if days <= 14 else None
    candidate = None
    if met_by is not None and within is not None:
        candidate = "99496" if complexity == "high" and within == 7 else "99495"
    status = "readmitted" if readmission else "closed" if closed or now > window_end else "open"
    return Progress(
        status=status,
        attempts=attempts,
        contacted_at=contact.at if contact else None,
        contact_met=met_by is not None,
        contact_met_by=met_by,
        visit=visit,
        visit_within_days=within,
        medication_reconciled=_first(evidence.reconciliations, after=discharged_at, until=window_end),
        readmission=readmission,
        billing_candidate=candidate,
    )


def _first(
    events: Sequence[Event], *, after: datetime, until: datetime, strictly: bool = False
) -> Event | None:
    inside = [e for e in events if (e.at > after if strictly else e.at >= after) and e.at <= until]
    return min(inside, key=lambda e: (e.at, e.source)) if inside else None
