"""SendGrid's event webhook: delivery, engagement, bounces, spam reports and unsubscribes.

Events name our message through the `aftercare_message_id` custom argument. Bounces and spam reports
suppress the address; spam reports and unsubscribes also withdraw the patient's email consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.consents import record_consent
from aftercare.store.message_events import ProviderEvent, apply_provider_event
from aftercare.store.suppressions import lift_suppression, suppress
from models.tables import Message
from models.temporal import MessageStatus

PROVIDER = "sendgrid"
# The custom argument every email carries: SendGrid echoes it in each event about that email.
MESSAGE_ID_ARG = "aftercare_message_id"
CONSENT_SOURCE = "sendgrid"
STATUS_OF: dict[str, MessageStatus] = {
    "processed": "queued",
    "delivered": "delivered",
    "bounce": "undelivered",
    "dropped": "failed",
}
# Why SendGrid dropped an email, as the suppression it implies.
_DROP_SUPPRESSIONS = {
    "bounced address": "bounce",
    "spam reporting address": "spamreport",
    "unsubscribed address": "unsubscribe",
    "invalid": "invalid",
}


@dataclass
class EventsApplied:
    """How a webhook delivery went: applied, already seen, or about no message of ours; `messages`
    the ids of the messages the applied events were about."""

    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0
    messages: list[str] = field(default_factory=list)


async def apply_events(session: AsyncSession, events: list[dict[str, Any]]) -> EventsApplied:
    """Apply a batch of events (SendGrid posts them as a JSON array)."""
    summary = EventsApplied()
    for raw in events:
        message = await _message_of(session, raw)
        kind = str(raw.get("event") or "")
        event_id = raw.get("sg_event_id")
        if message is None or not kind or not event_id:
            summary.unmatched += 1
            continue
        event = ProviderEvent(
            provider=PROVIDER,
            event_id=str(event_id),
            event=kind,
            occurred_at=_when(raw.get("timestamp")),
            status=_status(kind, raw),
            detail=_detail(kind, raw),
        )
        if not await apply_provider_event(session, message.id, event):
            summary.duplicates += 1
            continue
        summary.applied += 1
        summary.messages.append(message.id)
        await _consequences(session, message, kind, raw)
    return summary


async def _message_of(session: AsyncSession, raw: dict[str, Any]) -> Message | None:
    message_id = raw.get(MESSAGE_ID_ARG)
    if isinstance(message_id, str):
        message = await session.get(Message, message_id)
        return message if message is not None and message.provider == PROVIDER else None
    sg_message_id = raw.get("sg_message_id")
    if not isinstance(sg_message_id, str):
        return None
    # Emails sent in one request (one personalization each) share its id: the recipient tells them apart.
    sharing = (
        await session.scalars(
            select(Message).where(
                Message.provider == PROVIDER, Message.provider_message_id == sg_message_id.split(".", 1)[0]
            )
        )
    ).all()
    if len(sharing) <= 1:
        return sharing[0] if sharing else None
    email = str(raw.get("email") or "").lower()
    return next((message for message in sharing if (message.to or "").lower() == email), None)


def _status(kind: str, raw: dict[str, Any]) -> MessageStatus | None:
    if kind == "bounce" and raw.get("type") == "blocked":
        return "undelivered"
    return STATUS_OF.get(kind)


def _detail(kind: str, raw: dict[str, Any]) -> str | None:
    if kind in ("bounce", "dropped", "deferred"):
        reason = raw.get("reason") or raw.get("response")
        return f"SendGrid {kind}: {reason}" if reason else f"SendGrid {kind}"
    return None


async def _consequences(session: AsyncSession, message: Message, kind: str, raw: dict[str, Any]) -> None:
    address = message.to or raw.get("email")
    if not isinstance(address, str):
        return
    if kind == "bounce" and raw.get("type") != "blocked":
        await suppress(session, "email", address, "bounce", source=PROVIDER)
    elif kind == "dropped":
        reason = str(raw.get("reason") or "").lower()
        for phrase, suppression in _DROP_SUPPRESSIONS.items():
            if phrase in reason:
                await suppress(session, "email", address, suppression, source=PROVIDER)
                break
    elif kind in ("spamreport", "unsubscribe", "group_unsubscribe"):
        reason = "spamreport" if kind == "spamreport" else "unsubscribe"
        await suppress(session, "email", address, reason, source=PROVIDER)
        await record_consent(session, [message.patient_id], "email", "revoked", CONSENT_SOURCE, detail=kind)
    elif kind == "group_resubscribe":
        await lift_suppression(session, "email", address, reasons=["unsubscribe"])
        await record_consent(session, [message.patient_id], "email", "granted", CONSENT_SOURCE, detail=kind)


def _when(timestamp: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(timestamp), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)
