"""SendGrid's signed event webhook (ECDSA over the timestamp and the raw body)."""

from __future__ import annotations

import binascii
import json
import time

from fastapi import APIRouter, HTTPException, Request, status
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from aftercare.enrollment.write_back import write_reported_messages_back
from aftercare.metrics import PROVIDER_WEBHOOKS
from aftercare.provider_feedback.sendgrid_events import PROVIDER, apply_events
from aftercare.settings import Settings
from api.deps import ServicesDep
from models.api import WebhookEventsApplied

router = APIRouter(prefix="/webhooks/sendgrid", tags=["webhooks"])


def verify(payload: str, signature: str | None, timestamp: str | None, settings: Settings) -> None:
    """403 unless SendGrid signed this payload recently with the configured verification key."""
    if not settings.sendgrid_webhook_public_key:
        raise _rejected("SendGrid webhooks cannot be verified: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    if not signature or not timestamp:
        raise _rejected("the SendGrid signature or timestamp header is missing")
    try:
        age = time.time() - int(timestamp)
    except ValueError:
        raise _rejected("the SendGrid timestamp header is not a Unix time") from None
    if abs(age) > settings.webhook_max_age_seconds:
        raise _rejected(f"the SendGrid timestamp is {int(age)} s old; a replay is refused")
    try:
        valid = EventWebhook(settings.sendgrid_webhook_public_key).verify_signature(
            payload, signature, timestamp
        )
    except (ValueError, binascii.Error):
        valid = False
    if not valid:
        raise _rejected("the SendGrid signature does not match this request")


@router.post("/events", response_model=WebhookEventsApplied)
async def events(request: Request, services: ServicesDep) -> WebhookEventsApplied:
    """Apply delivered, open, click, bounce, dropped, spam report and unsubscribe events."""
    payload = (await request.body()).decode("utf-8", errors="replace")
    verify(
        payload,
        request.headers.get(EventWebhookHeader.SIGNATURE),
        request.headers.get(EventWebhookHeader.TIMESTAMP),
        services.settings,
    )
    try:
        document = json.loads(payload)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(document, list) or not all(isinstance(event, dict) for event in document):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body must be a JSON array of event objects")
    async with services.sessions.begin() as session:
        summary = await apply_events(session, document)
    await write_reported_messages_back(
        services.sessions, services.temporal, services.settings, summary.messages
    )
    for outcome, count in (
        ("applied", summary.applied),
        ("duplicate", summary.duplicates),
        ("unmatched", summary.unmatched),
    ):
        PROVIDER_WEBHOOKS.labels(PROVIDER, "event", outcome).inc(count)
    return WebhookEventsApplied(
        applied=summary.applied, duplicates=summary.duplicates, unmatched=summary.unmatched
    )


def _rejected(detail: str) -> HTTPException:
    PROVIDER_WEBHOOKS.labels(PROVIDER, "event", "rejected").inc()
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)
