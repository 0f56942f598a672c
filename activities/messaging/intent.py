"""Send intents: the message row recorded before a provider is called, for a journey step or a
campaign recipient alike, and the provider's view of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activities.messaging.providers import MessageProvider, OutgoingMessage
from aftercare.compose import ComposedMessage
from aftercare.facilities.voice import Voice
from aftercare.guardrails import Decision, SendContext
from aftercare.patient_links.tokens import PatientLinks
from aftercare.patient_links.unsubscribe import add_opt_out
from models.tables import Message, Patient

# A message in one of these states will not be delivered (again).
NOT_DELIVERED = ("pending", "skipped", "failed", "undelivered")


@dataclass(frozen=True)
class IntentOrigin:
    """Who a message is for and what sends it: the idempotency key, and the enrollment's step or the
    campaign run."""

    idempotency_key: str
    patient_id: str
    enrollment_id: str | None = None
    journey_key: str | None = None
    step_id: str | None = None
    campaign_run_id: str | None = None


def send_context(
    patient: Patient,
    composed: ComposedMessage,
    purpose: str,
    *,
    urgent: bool,
    over_cap: str,
    now: datetime,
    voice: Voice | None = None,
) -> SendContext:
    """What the guardrails judge a composed message by (on the clock of the patient's facility)."""
    return SendContext(
        patient=patient,
        channel=composed.channel,
        to=composed.to,
        unreachable_reason=composed.unreachable_reason,
        purpose=purpose,
        phi=composed.phi,
        has_non_phi_variant=composed.non_phi_body is not None,
        urgent=urgent,
        over_cap=over_cap,
        now=now,
        facility_timezone=voice.timezone if voice else None,
        facility_quiet_hours=voice.quiet_hours if voice else None,
    )


def message_intent(
    origin: IntentOrigin,
    composed: ComposedMessage,
    purpose: str,
    decision: Decision,
    voice: Voice | None = None,
    links: PatientLinks | None = None,
) -> dict[str, Any]:
    """The message row for a decided send: `pending` when it may go, `skipped` with the reason when
    the guardrails refused it (the non-PHI variant when the decision says so); sent as the patient's
    facility (`voice`) when they have one; an email with its unsubscribe headers and preference centre
    footer when the sender makes patient `links`."""
    allowed = decision.outcome == "allow" and composed.to is not None
    subject, body, html = composed.subject, composed.body, composed.html
    if decision.non_phi:
        subject, body, html = composed.non_phi_subject or subject, composed.non_phi_body or body, None
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "idempotency_key": origin.idempotency_key,
        "patient_id": origin.patient_id,
        "enrollment_id": origin.enrollment_id,
        "journey_key": origin.journey_key,
        "step_id": origin.step_id,
        "campaign_run_id": origin.campaign_run_id,
        "channel": composed.channel,
        "to": composed.to,
        "subject": subject,
        "body": body,
        "html": html,
        "template_key": composed.template_key,
        "template_version": composed.template_version,
        "locale": composed.locale,
        "purpose": purpose,
        "status": "pending" if allowed else "skipped",
        "reason": None if allowed else decision.reason,
        "facility": voice.facility if voice else None,
        "sender": voice.sender(composed.channel) if voice else None,
        "headers": None,
    }
    add_opt_out(values, links, composed.care_critical)
    return values


async def settle_locally(values: dict[str, Any], provider: MessageProvider) -> bool:
    """Send a pending intent at once through a provider with no external side effect (the outbox), so
    the intent and its outcome are recorded together; True when the message counts as sent."""
    if values["status"] == "pending" and not provider.external:
        outcome = await provider.send(outgoing_from(values))
        values.update(
            status=outcome.status,
            reason=outcome.reason,
            provider=provider.name,
            provider_message_id=outcome.provider_message_id,
        )
    return values["status"] not in NOT_DELIVERED


_OUTGOING_FIELDS = (
    "id",
    "patient_id",
    "channel",
    "to",
    "subject",
    "body",
    "html",
    "locale",
    "sender",
    "facility",
)


def outgoing_from(values: dict[str, Any]) -> OutgoingMessage:
    """The provider's view of an intent's values."""
    return OutgoingMessage(
        **{field: values[field] for field in _OUTGOING_FIELDS},
        headers=values.get("headers"),
        attachments=tuple(values.get("attachments") or ()),
        created_at=values.get("created_at") or datetime.now(UTC),
        attempted_at=values.get("attempted_at"),
    )


def outgoing(message: Message) -> OutgoingMessage:
    """The provider's view of a recorded message."""
    fields = (*_OUTGOING_FIELDS, "headers", "created_at", "attempted_at", "attachments")
    return outgoing_from({field: getattr(message, field) for field in fields})
