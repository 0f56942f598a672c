"""The guardrail decision for one attempt of a send: every rule, in order, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.consent import phi_consent, purpose_consent
from aftercare.guardrails.decision import Decision, allow
from aftercare.guardrails.facts import (
    QUIET_HOURS_ATTRIBUTE,
    PatientFacts,
    RecentMessage,
    load_facts,
    lock_and_count_recent,
)
from aftercare.guardrails.frequency import LOOK_BACK, caps_applying, over_cap
from aftercare.guardrails.pause import paused
from aftercare.guardrails.policy import GuardrailPolicy, parse_quiet_hours
from aftercare.guardrails.quiet_hours import quiet_until
from aftercare.guardrails.suppression import suppressed_patient
from models.tables import Patient
from models.zones import zone_info

__all__ = ["QUIET_HOURS_ATTRIBUTE", "SendContext", "decide", "judge", "patient_today"]


@dataclass(frozen=True)
class SendContext:
    """What the rules look at: the patient, the chosen channel and address (None with the reason when
    unreachable), the purpose, the template's PHI flag, urgency, the journey's over-cap choice, and
    the moment the send is judged at."""

    patient: Patient
    channel: str
    to: str | None
    unreachable_reason: str | None
    purpose: str
    phi: bool
    has_non_phi_variant: bool
    urgent: bool
    over_cap: str
    now: datetime
    # The patient's facility's zone and quiet hours, which stand before the install's (None: the install's).
    facility_timezone: str | None = None
    facility_quiet_hours: tuple[time, time] | None = None


def patient_today(policy: GuardrailPolicy, patient: Patient, now: datetime) -> date:
    """The day it is at `now` on the patient's clock (their zone, else the hospital's)."""
    return now.astimezone(zone_info(patient.timezone or policy.hospital_timezone)).date()


async def decide(
    session: AsyncSession, policy: GuardrailPolicy, send: SendContext, facts: PatientFacts | None = None
) -> Decision:
    """Suppression, reachability, consent, PHI, quiet hours, then frequency caps (which lock the
    patient: record the intent in the same transaction). `facts` are loaded when not given; given,
    they must have been loaded with the policy's `minor_age`."""
    patient = send.patient
    if facts is None:
        loaded = await load_facts(
            session,
            [patient],
            channels=(),
            minor_age=policy.minor_age,
            today=patient_today(policy, patient, send.now),
        )
        facts = loaded[patient.id]
    recent: Sequence[RecentMessage] = ()
    if caps_applying(policy.caps, send.channel, send.purpose):
        counted = await lock_and_count_recent(session, [patient.id], send.now - LOOK_BACK)
        recent = counted.get(patient.id, ())
    return judge(policy, send, facts, recent)


def judge(
    policy: GuardrailPolicy, send: SendContext, facts: PatientFacts, recent: Sequence[RecentMessage]
) -> Decision:
    """The rules over a patient's facts and their recent messages (read under the patient's lock)."""
    patient = send.patient
    zone = patient.timezone or send.facility_timezone or policy.hospital_timezone
    today = patient_today(policy, patient, send.now)
    if (suppressed := suppressed_patient(patient, facts.guardian, policy.minor_age, today)) is not None:
        return suppressed
    if send.to is None:
        return Decision("skip", "reachability", send.unreachable_reason)
    refused = purpose_consent(facts, send.channel, send.purpose, policy.opt_in_purposes)
    if refused is not None:
        return refused
    urgent = _urgency(policy, send)
    if (held := paused(facts, send.now, urgent)) is not None:
        return held
    decision = allow()
    if send.phi:
        phi = phi_consent(facts, send.channel, send.has_non_phi_variant)
        if phi is not None and phi.outcome != "allow":
            return phi
        decision = phi or decision
    until = quiet_until(send.now, _quiet_hours(facts, policy, send.facility_quiet_hours), zone)
    if until is not None:
        if urgent:
            decision = allow(
                "quiet_hours_override", f"sent in quiet hours: {urgent}", non_phi=decision.non_phi
            )
        else:
            return Decision("defer", "quiet_hours", f"quiet hours in {zone}", until=until)
    capped = over_cap(
        policy.caps,
        recent,
        channel=send.channel,
        purpose=send.purpose,
        now=send.now,
        over_cap=send.over_cap,
    )
    return capped or decision


def _urgency(policy: GuardrailPolicy, send: SendContext) -> str | None:
    """Why the send may go in quiet hours and through a pause, if it may."""
    if send.urgent:
        return "the step is urgent"
    return f"{send.purpose} is urgent" if send.purpose in policy.urgent_purposes else None


def _quiet_hours(
    facts: PatientFacts, policy: GuardrailPolicy, facility: tuple[time, time] | None
) -> tuple[time, time] | None:
    own = facts.attributes.get(QUIET_HOURS_ATTRIBUTE)
    if isinstance(own, str):
        try:
            return parse_quiet_hours(own)
        except ValueError:
            pass
    return facility or policy.quiet_hours
