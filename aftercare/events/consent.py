"""Consent at registration: a patient without consent for event messages on the registration's channel
is registered all the same, and the decision log says that they will not be messaged about it.

The check is the guardrails' own consent rule (`purpose_consent`, purpose `appointment_reminders`), on
the facts every send loads; each later message about the event is decided again when it is sent, like
every message, so a consent given in between lets it go."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails import GuardrailPolicy
from aftercare.guardrails.consent import purpose_consent
from aftercare.guardrails.facts import load_facts
from aftercare.store.decisions import record_decision
from models.event_tables import EventRegistration
from models.tables import Patient

EVENT_PURPOSE = "appointment_reminders"


def consent_key(registration_id: str) -> str:
    """The decision log's key of a registration's consent check."""
    return f"event:{registration_id}:consent"


async def check_registration_consent(
    session: AsyncSession, registration: EventRegistration, channel: str, policy: GuardrailPolicy
) -> bool:
    """In the registration's transaction: True when the patient may be messaged about the event on
    `channel`; otherwise record a `suppressed` decision (rule `consent`) saying why, and False."""
    patient = await session.get(Patient, registration.patient_id)
    if patient is None:
        return False
    facts = (await load_facts(session, [patient], channels=(channel,), attributes=()))[patient.id]
    refused = purpose_consent(facts, channel, EVENT_PURPOSE, policy.opt_in_purposes)
    if refused is None:
        return True
    await record_decision(
        session,
        patient_id=patient.id,
        idempotency_key=consent_key(registration.id),
        purpose=EVENT_PURPOSE,
        decision="suppressed",
        rule=refused.rule,
        reason=f"registered for {registration.event_key} ({registration.status}) but not messaged: "
        f"{refused.reason}",
        channel=channel,
    )
    return False
