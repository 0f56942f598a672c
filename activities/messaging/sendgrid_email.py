"""Email through SendGrid's v3 Mail Send API, with the official `sendgrid` SDK.

Every email carries the message id as a custom argument, so SendGrid's event webhook names the message
each event is about. Mail Send has no idempotency key: after an interrupted attempt the provider looks
for the webhook's events about the message, and only once none arrived within the settle window does
it send again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Category,
    CustomArg,
    Disposition,
    Email,
    FileContent,
    FileName,
    FileType,
    Header,
    Mail,
    To,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderRejectedError,
    ProviderTemporaryError,
)
from aftercare.provider_feedback.sendgrid_events import MESSAGE_ID_ARG
from models.tables import Message, MessageEvent

SETTLE_WINDOW = timedelta(minutes=5)
# Mail Send takes up to 1,000 personalizations a request, each with up to 10,000 bytes of substitutions.
MAX_PERSONALIZATIONS = 1000
_SUBSTITUTIONS_LIMIT = 10_000
# The batched request's content is these tags; each personalization substitutes its own message.
_TEXT_TAG = "-aftercare-text-"
_HTML_TAG = "-aftercare-html-"


class SendGridEmailProvider:
    """Sends email with `mail.send`; the message's fate arrives through the event webhook."""

    name = "sendgrid"
    external = True

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._client = SendGridAPIClient(api_key, host=(base_url or "https://api.sendgrid.com").rstrip("/"))
        self._client.client.timeout = timeout_seconds
        self._from = Email(from_email, from_name)

    def mail(self, message: OutgoingMessage) -> Mail:
        """The Mail Send request for a message."""
        mail = Mail(
            # The facility's address when it has one; the display name stays the install's.
            from_email=Email(message.sender, self._from.name) if message.sender else self._from,
            to_emails=To(message.to),
            subject=message.subject or "",
            plain_text_content=message.body,
            html_content=message.html,
        )
        # SendGrid's spec has custom arguments as an object on the personalization (a string at the top).
        mail.custom_arg = CustomArg(MESSAGE_ID_ARG, message.id, p=0)
        mail.category = Category("aftercare")
        extra = {"Content-Language": message.locale} if message.locale else {}
        extra.update(message.headers or {})
        for name, value in extra.items():
            mail.header = Header(name, value)
        for attached in reversed(message.attachments):  # the SDK puts each one first
            mail.add_attachment(
                Attachment(
                    FileContent(attached["content"]),
                    FileName(attached["filename"]),
                    FileType(attached["content_type"]),
                    Disposition("attachment"),
                )
            )
        return mail

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Hand the email to SendGrid (202 Accepted means queued for delivery)."""
        try:
            request = self.mail(message).get()
        except (KeyError, ValueError) as error:
            raise ProviderRejectedError("the email address cannot be used", suppress="invalid") from error
        return ProviderOutcome(status="queued", provider_message_id=await self._post(request))

    # --- many emails in one request ---------------------------------------------------------------

    max_batch = MAX_PERSONALIZATIONS

    def batch_key(self, message: OutgoingMessage) -> tuple[str | None, bool] | None:
        """Emails with the same key can share one Mail Send request (one personalization each); None for
        one that goes alone (attachments, or more than a personalization's substitutions can carry)."""
        size = len(message.body.encode()) + len((message.html or "").encode())
        if message.attachments or size > _SUBSTITUTIONS_LIMIT - 200:
            return None
        return (message.sender, message.html is not None)

    def batch(self, messages: Sequence[OutgoingMessage]) -> dict[str, Any]:
        """One Mail Send request for emails of one `batch_key`: each recipient is a personalization
        with its own subject, headers, message id (custom argument) and, as substitutions, its own text."""
        first = messages[0]
        request: dict[str, Any] = self.mail(replace(first, headers=None, locale=None)).get()
        request.pop("headers", None)
        request["subject"] = first.subject or " "
        request["content"] = [{"type": "text/plain", "value": _TEXT_TAG}] + (
            [{"type": "text/html", "value": _HTML_TAG}] if first.html is not None else []
        )
        request["personalizations"] = [_personalization(message) for message in messages]
        return request

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[ProviderOutcome]:
        """Hand emails of one `batch_key` to SendGrid in one request. SendGrid takes or refuses the
        request as a whole: a refusal (one bad address refuses them all) is raised for the caller to send
        them one by one; each accepted email's events name it by its own custom argument."""
        try:
            request = self.batch(messages)
        except (KeyError, ValueError) as error:
            raise ProviderRejectedError("an email address cannot be used") from error
        provider_id = await self._post(request)
        return [ProviderOutcome(status="queued", provider_message_id=provider_id) for _ in messages]

    async def _post(self, request: dict[str, Any]) -> str | None:
        """Send the Mail Send request; SendGrid's `X-Message-Id` for it."""
        try:
            response = await asyncio.to_thread(self._client.send, request)
        except HTTPError as error:
            raise _classify(error) from error
        except TimeoutError as error:
            raise ProviderTemporaryError("SendGrid did not answer in time", ambiguous=True) from error
        except (URLError, OSError) as error:
            raise ProviderTemporaryError(f"SendGrid could not be reached: {type(error).__name__}") from error
        headers = response.headers
        provider_id = headers.get("X-Message-Id") if headers is not None else None
        return provider_id or None

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """SendGrid's events about the message prove it was accepted; wait for them a little while."""
        async with self._sessions() as session:
            event = await session.scalar(
                select(MessageEvent)
                .where(MessageEvent.message_id == message.id, MessageEvent.provider == self.name)
                .limit(1)
            )
            provider_id = await session.scalar(
                select(Message.provider_message_id).where(Message.id == message.id)
            )
        if event is not None:
            return ProviderOutcome(status="queued", provider_message_id=provider_id)
        waited = datetime.now(UTC) - message.created_at
        if waited < SETTLE_WINDOW:
            raise ProviderTemporaryError(
                "waiting for SendGrid's events to show whether an interrupted send went out",
                retry_after=min(30.0, (SETTLE_WINDOW - waited).total_seconds()),
            )
        return None


def _personalization(message: OutgoingMessage) -> dict[str, Any]:
    personalization: dict[str, Any] = {
        "to": [{"email": message.to}],
        "custom_args": {MESSAGE_ID_ARG: message.id},
        "substitutions": {_TEXT_TAG: message.body}
        | ({_HTML_TAG: message.html} if message.html is not None else {}),
    }
    if message.subject:
        personalization["subject"] = message.subject
    headers = {"Content-Language": message.locale} if message.locale else {}
    headers.update(message.headers or {})
    if headers:
        personalization["headers"] = headers
    return personalization


def _classify(error: HTTPError) -> Exception:
    status = int(error.status_code)
    if status == 429:
        return ProviderTemporaryError("SendGrid answered 429 (rate limited)", retry_after=_reset_in(error))
    if status >= 500:
        return ProviderTemporaryError(f"SendGrid answered {status}", ambiguous=status == 504)
    detail = _first_error(error)
    return ProviderRejectedError(
        f"SendGrid refused the email: HTTP {status}" + (f": {detail}" if detail else "")
    )


def _reset_in(error: HTTPError) -> float | None:
    headers = error.headers or {}
    reset = headers.get("X-RateLimit-Reset")
    try:
        return max(1.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


def _first_error(error: HTTPError) -> str | None:
    try:
        document = json.loads(error.body or b"{}")
    except ValueError:
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        return str(message) if message else None
    return None
