"""TCM episodes: opened (or their deadlines kept up to date) when a discharge is scored, and read with
their progress gathered from tasks, replies and clinical facts.

An episode is opened only for a discharge within the last 30 days: a history import does not fill the
worklist with stays long past.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.facilities.holidays import facility_holidays
from aftercare.facilities.voice import Voice
from aftercare.risk.discharges import INPATIENT_CLASSES
from aftercare.tcm.deadlines import complexity_of, contact_due, visit_due
from aftercare.tcm.progress import (
    CALL_OUTCOMES,
    MEDICATION_RECONCILED,
    READMISSION_DAYS,
    VOICE_CALL_OUTCOMES,
    Attempt,
    Event,
    Evidence,
    Progress,
    progress,
)
from models.risk_tables import TcmEpisode
from models.tables import (
    ClinicalAppointment,
    ClinicalEncounter,
    ClinicalProcedure,
    Enrollment,
    EnrollmentStep,
    InboundMessage,
    Task,
)
from models.voice_tables import VoiceCall

# SNOMED CT 430193006 |Medication reconciliation (procedure)|.
MEDICATION_RECONCILIATION_CODES = ["http://snomed.info/sct|430193006"]
AMBULATORY_CLASSES = ("AMB", "HH", "VR")
DEFAULT_INTERACTIVE_CHANNELS = ("sms", "email", "voice", "whatsapp")


@dataclass(frozen=True)
class Discharged:
    """A scored discharge: whose, which, when, its LACE band and the patient's facility (None: none)."""

    patient_id: str
    encounter_id: str
    discharged_at: datetime
    band: str | None
    voice: Voice | None
    default_zone: str


def episode_rows(discharges: Sequence[Discharged], now: datetime) -> list[dict[str, Any]]:
    """The episode of each discharge of the last 30 days, with its deadlines on its facility's calendar,
    as rows to open or bring up to date (JSON-ready: instants as ISO 8601)."""
    recent = [item for item in discharges if item.discharged_at >= now - timedelta(days=READMISSION_DAYS)]
    calendars: dict[tuple[str, int], set[date]] = {}
    rows = []
    for item in recent:
        zone = item.voice.timezone if item.voice is not None else item.default_zone
        holidays: set[date] = set()
        if item.voice is not None:
            key = (item.voice.facility, item.discharged_at.year)
            if key not in calendars:
                years = range(key[1], key[1] + 2)
                voice = item.voice
                calendars[key] = facility_holidays(voice.holidays, voice.country, voice.subdivision, years)
            holidays = calendars[key]
        complexity = complexity_of(item.band)
        rows.append(
            {
                "id": f"tcm-{uuid.uuid4().hex[:24]}",
                "encounter_id": item.encounter_id,
                "patient_id": item.patient_id,
                "facility": item.voice.facility if item.voice is not None else None,
                "timezone": zone,
                "discharged_at": item.discharged_at.isoformat(),
                "contact_due_at": contact_due(item.discharged_at, zone, holidays).isoformat(),
                "visit_due_at": visit_due(item.discharged_at, zone, complexity).isoformat(),
                "complexity": complexity,
                "risk_band": item.band,
            }
        )
    return rows


async def set_complexity(session: AsyncSession, episode_id: str, complexity: str) -> TcmEpisode | None:
    """Staff set the episode's complexity (and so its visit deadline); None for an unknown episode."""
    episode = await session.get(TcmEpisode, episode_id)
    if episode is None:
        return None
    episode.complexity = complexity
    episode.complexity_source = "staff"
    episode.visit_due_at = visit_due(episode.discharged_at, episode.timezone, complexity)
    episode.updated_at = datetime.now(UTC)
    await session.flush()
    return episode


async def open_worklist(session: AsyncSession, now: datetime, limit: int) -> list[TcmEpisode]:
    """Episodes still running (not closed, discharged within 30 days), the nearest contact deadline first."""
    rows = await session.scalars(
        select(TcmEpisode)
        .where(
            TcmEpisode.status == "open",
            TcmEpisode.discharged_at >= now - timedelta(days=READMISSION_DAYS),
        )
        .order_by(TcmEpisode.contact_due_at, TcmEpisode.id)
        .limit(limit)
    )
    return list(rows)


async def progress_of(
    session: AsyncSession,
    episodes: Sequence[TcmEpisode],
    now: datetime,
    interactive_channels: Sequence[str] = DEFAULT_INTERACTIVE_CHANNELS,
) -> dict[str, Progress]:
    """Each episode's progress from the evidence of its patient."""
    if not episodes:
        return {}
    evidence = await _evidence(
        session,
        sorted({e.patient_id for e in episodes}),
        min(e.discharged_at for e in episodes),
        interactive_channels,
    )
    return {
        episode.id: progress(
            discharged_at=episode.discharged_at,
            contact_due_at=episode.contact_due_at,
            complexity=episode.complexity,
            timezone=episode.timezone,
            closed=episode.status == "closed",
            evidence=evidence.get(episode.patient_id, Evidence()),
            now=now,
        )
        for episode in episodes
    }


async def _evidence(
    session: AsyncSession, patients: list[str], since: datetime, interactive_channels: Sequence[str]
) -> dict[str, Evidence]:
    attempts: dict[str, list[Attempt]] = defaultdict(list)
    reconciled: dict[str, list[Event]] = defaultdict(list)
    tasks = await session.execute(
        select(Task.patient_id, Task.id, Task.outcome, Task.completed_at).where(
            Task.patient_id.in_(patients),
            Task.status == "completed",
            Task.completed_at >= since,
            Task.outcome.in_([*CALL_OUTCOMES, MEDICATION_RECONCILED]),
        )
    )
    for patient_id, task_id, outcome, at in tasks:
        if outcome == MEDICATION_RECONCILED:
            reconciled[patient_id].append(Event(at, f"Task/{task_id}"))
        else:
            attempts[patient_id].append(
                Attempt(at, "call", outcome, CALL_OUTCOMES[outcome], f"Task/{task_id}")
            )
    calls = await session.execute(
        select(VoiceCall.patient_id, VoiceCall.message_id, VoiceCall.outcome, VoiceCall.created_at).where(
            VoiceCall.patient_id.in_(patients),
            VoiceCall.created_at >= since,
            VoiceCall.outcome.in_(list(VOICE_CALL_OUTCOMES)),
        )
    )
    for patient_id, message_id, outcome, at in calls:
        attempts[patient_id].append(
            Attempt(at, "call", outcome, VOICE_CALL_OUTCOMES[outcome], f"VoiceCall/{message_id}")
        )
    replies = await session.execute(
        select(
            InboundMessage.patient_id,
            InboundMessage.provider_message_id,
            InboundMessage.channel,
            InboundMessage.received_at,
        ).where(InboundMessage.patient_id.in_(patients), InboundMessage.received_at >= since)
    )
    for patient_id, message_id, channel, at in replies:
        interactive = channel in interactive_channels
        attempts[patient_id].append(
            Attempt(at, "reply", channel, interactive, f"InboundMessage/{message_id}")
        )
    procedures = await session.execute(
        select(
            ClinicalProcedure.patient_id, ClinicalProcedure.resource_id, ClinicalProcedure.performed_at
        ).where(
            ClinicalProcedure.patient_id.in_(patients),
            ClinicalProcedure.codes.op("&&")(cast(MEDICATION_RECONCILIATION_CODES, ARRAY(String))),
            ClinicalProcedure.status == "completed",
            ClinicalProcedure.performed_at >= since,
        )
    )
    for patient_id, resource_id, at in procedures:
        reconciled[patient_id].append(Event(at, f"Procedure/{resource_id}"))
    visits, admissions = await _encounters(session, patients, since)
    return {
        patient: Evidence(
            attempts=attempts.get(patient, []),
            visits=visits.get(patient, []),
            reconciliations=reconciled.get(patient, []),
            admissions=admissions.get(patient, []),
        )
        for patient in patients
    }


async def _encounters(
    session: AsyncSession, patients: list[str], since: datetime
) -> tuple[dict[str, list[Event]], dict[str, list[Event]]]:
    visits: dict[str, list[Event]] = defaultdict(list)
    admissions: dict[str, list[Event]] = defaultdict(list)
    appointments = await session.execute(
        select(
            ClinicalAppointment.patient_id, ClinicalAppointment.resource_id, ClinicalAppointment.start_at
        ).where(
            ClinicalAppointment.patient_id.in_(patients),
            ClinicalAppointment.status == "fulfilled",
            ClinicalAppointment.start_at >= since,
        )
    )
    for patient_id, resource_id, at in appointments:
        visits[patient_id].append(Event(at, f"Appointment/{resource_id}"))
    encounters = await session.execute(
        select(
            ClinicalEncounter.patient_id,
            ClinicalEncounter.resource_id,
            ClinicalEncounter.class_code,
            ClinicalEncounter.status,
            ClinicalEncounter.start_at,
        ).where(
            ClinicalEncounter.patient_id.in_(patients),
            ClinicalEncounter.start_at >= since,
            ClinicalEncounter.class_code.in_([*AMBULATORY_CLASSES, *INPATIENT_CLASSES]),
        )
    )
    for patient_id, resource_id, class_code, status, at in encounters:
        event = Event(at, f"Encounter/{resource_id}")
        if class_code in INPATIENT_CLASSES and status not in ("cancelled", "entered-in-error"):
            admissions[patient_id].append(event)
        elif class_code in AMBULATORY_CLASSES and status == "finished":
            visits[patient_id].append(event)
    return visits, admissions


@dataclass(frozen=True)
class JourneyTaken:
    """The journey a discharge started, its version and the A/B path it took (None: no split)."""

    journey: str
    version: int
    variant: str | None


async def journeys_of(session: AsyncSession, encounter_ids: Sequence[str]) -> dict[str, JourneyTaken]:
    """The journey each discharge's Encounter started (the first enrolled, when several did)."""
    if not encounter_ids:
        return {}
    resource_type = Enrollment.trigger[("resource", "resource_type")].as_string()
    resource_id = Enrollment.trigger[("resource", "resource_id")].as_string()
    rows = await session.execute(
        select(resource_id, Enrollment.id, Enrollment.journey_key, Enrollment.journey_version)
        .where(
            resource_type == "Encounter",
            resource_id.in_(list(encounter_ids)),
        )
        .order_by(Enrollment.started_at, Enrollment.id)
    )
    chosen: dict[str, tuple[str, str, int]] = {}
    for encounter_id, enrollment_id, journey, version in rows:
        chosen.setdefault(encounter_id, (enrollment_id, journey, version))
    paths = await session.execute(
        select(EnrollmentStep.enrollment_id, EnrollmentStep.result)
        .where(
            EnrollmentStep.enrollment_id.in_([item[0] for item in chosen.values()]),
            EnrollmentStep.detail.like("path %"),
        )
        .order_by(EnrollmentStep.enrollment_id, EnrollmentStep.seq)
    )
    variants: dict[str, str] = {}
    for enrollment_id, label in paths:
        variants.setdefault(enrollment_id, label)
    return {
        encounter_id: JourneyTaken(journey, version, variants.get(enrollment_id))
        for encounter_id, (enrollment_id, journey, version) in chosen.items()
    }


async def episode_for(session: AsyncSession, patient_id: str, encounter_id: str | None) -> TcmEpisode | None:
    """The episode of `encounter_id`'s discharge when there is one, else the patient's latest."""
    if encounter_id is not None:
        episode = await session.scalar(select(TcmEpisode).where(TcmEpisode.encounter_id == encounter_id))
        if episode is not None:
            return episode
    latest: TcmEpisode | None = await session.scalar(
        select(TcmEpisode)
        .where(TcmEpisode.patient_id == patient_id)
        .order_by(TcmEpisode.discharged_at.desc(), TcmEpisode.id)
        .limit(1)
    )
    return latest
