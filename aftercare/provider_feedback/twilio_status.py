"""Twilio's message status callbacks, applied to the message they are about."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.message_events import ProviderEvent, apply_provider_event, message_for_provider_id
from aftercare.store.suppressions import suppress
from models.tables import Message
from models.temporal import MessageStatus

PROVIDER = "twilio"
STATUS_OF: dict[str, MessageStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
# Errors, at send or in a delivery report, that say the number itself cannot take our texts: suppress it.
# https://www.twilio.com/docs/api/errors
SUPPRESS_FOR_ERROR = {
    "21211": "invalid",
    "21614": "landline",
    "21610": "stop",
    "30005": "invalid",
    "30006": "landline",
}


async def apply_status_callback(session: AsyncSession, message_id: str, params: Mapping[str, str]) -> bool:
    """Apply one callback; False when the message is unknown or the same status was reported before."""
    message = await session.get(Message, message_id)
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    reported = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if message is None or message.provider != PROVIDER or not sid or reported not in STATUS_OF:
        return False
    if message.provider_message_id not in (None, sid):
        return False
    if message.provider_message_id is None:
        # The callback URL names the message, so this SID is the one an interrupted send created, unless
        # another message already owns it.
        owner = await message_for_provider_id(session, PROVIDER, sid)
        if owner is not None and owner.id != message.id:
            return False
        message.provider_message_id = sid
    error_code = params.get("ErrorCode") or None
    detail = f"Twilio error {error_code}" if error_code else None
    event = ProviderEvent(
        provider=PROVIDER,
        event_id=f"{sid}:{reported}",
        event=reported,
        occurred_at=datetime.now(UTC),
        status=STATUS_OF[reported],
        detail=detail,
    )
    applied = await apply_provider_event(session, message.id, event)
    if applied and error_code in SUPPRESS_FOR_ERROR and message.to:
        await suppress(
            session, "sms", message.to, SUPPRESS_FOR_ERROR[error_code], source=f"twilio:{error_code}"
        )
    return applied
