"""The guardrail decision for one attempt of a send: every rule, in order, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.consent import phi_consent, purpose_consent
from aftercare.guardrails.decision import Decision, allow
from aftercare.guardrails.frequency import over_cap
from aftercare.guardrails.policy import GuardrailPolicy, parse_quiet_hours
from aftercare.guardrails.quiet_hours import quiet_until
from aftercare.guardrails.suppression import suppressed_patient
from aftercare.store.attributes import attribute_of
from models.tables import Patient

QUIET_HOURS_ATTRIBUTE = "quiet_hours"


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


async def decide(session: AsyncSession, policy: GuardrailPolicy, send: SendContext) -> Decision:
    """Suppression, reachability, consent, PHI, quiet hours, then frequency caps (which lock the
    patient: record the intent in the same transaction)."""
    patient = send.patient
    zone = patient.timezone or policy.hospital_timezone
    today = send.now.astimezone(ZoneInfo(zone)).date()
    if (suppressed := await suppressed_patient(session, patient, policy.minor_age, today)) is not None:
        return suppressed
    if send.to is None:
        return Decision("skip", "reachability", send.unreachable_reason)
    refused = await purpose_consent(session, patient.id, send.channel, send.purpose, policy.opt_in_purposes)
    if refused is not None:
        return refused
    decision = allow()
    if send.phi:
        phi = await phi_consent(session, patient.id, send.channel, send.has_non_phi_variant)
        if phi is not None and phi.outcome != "allow":
            return phi
        decision = phi or decision
    until = quiet_until(send.now, await _quiet_hours(session, patient.id, policy), zone)
    if until is not None:
        if send.urgent or send.purpose in policy.urgent_purposes:
            why = "the step is urgent" if send.urgent else f"{send.purpose} is urgent"
            decision = allow("quiet_hours_override", f"sent in quiet hours: {why}", non_phi=decision.non_phi)
        else:
            return Decision("defer", "quiet_hours", f"quiet hours in {zone}", until=until)
    capped = await over_cap(
        session,
        policy.caps,
        patient_id=patient.id,
        channel=send.channel,
        purpose=send.purpose,
        now=send.now,
        over_cap=send.over_cap,
    )
    return capped or decision


async def _quiet_hours(
    session: AsyncSession, patient_id: str, policy: GuardrailPolicy
) -> tuple[time, time] | None:
    own = await attribute_of(session, patient_id, QUIET_HOURS_ATTRIBUTE)
    if isinstance(own, str):
        try:
            return parse_quiet_hours(own)
        except ValueError:
            pass
    return policy.quiet_hours
