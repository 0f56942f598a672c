"""Calls through Twilio's Programmable Voice (the Calls API), with the official `twilio` SDK.

Twilio fetches the call's TwiML from Aftercare (`/webhooks/twilio/voice/twiml?message_id=…`) and reports
its progress to `/webhooks/twilio/voice/status?message_id=…`; both URLs name our message, and the first
callback records Twilio's CallSid against it. An attempt interrupted after Twilio took the call is found
again by that identity, never by number and time: a call is placed once per message.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance

from activities.messaging.providers import (
    OutgoingMessage,
    ProviderOutcome,
    ProviderTemporaryError,
)
from activities.messaging.twilio_sms import _HeaderKeepingClient, classified_twilio_errors
from aftercare.voice.calls import VOICE_PROVIDER, call_sid_of
from aftercare.voice.twiml import CallUrls

# How long a call rings before it counts as not answered, and how long an interrupted attempt waits
# for Twilio's first request about the call (its TwiML when answered, else its final status, both at
# most the ring time plus answering-machine detection away) before it counts as never placed.
RING_SECONDS = 30
CALLBACK_GRACE = timedelta(minutes=3)


class TwilioVoiceProvider:
    """Places calls with `calls.create`; finds an interrupted one by the identity its callbacks report."""

    name = VOICE_PROVIDER
    external = True

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_base_url: str,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 15.0,
        callback_grace: timedelta = CALLBACK_GRACE,
    ) -> None:
        self._sessions = sessions
        self._http = _HeaderKeepingClient(timeout=timeout_seconds)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self._from = from_number
        self._public = public_base_url
        self._grace = callback_grace

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        """Place the call at Twilio; it fetches the TwiML when the patient picks up."""
        created = await asyncio.to_thread(self._create, message)
        return ProviderOutcome(status="queued", provider_message_id=created.sid)

    def _create(self, message: OutgoingMessage) -> CallInstance:
        """`calls.create` (in a worker thread), its failures classified as for texts."""
        urls = CallUrls(self._public, message.id)
        sender = message.sender if message.sender and message.sender.startswith("+") else self._from
        with classified_twilio_errors(self._http, "the call"):
            return self._client.calls.create(
                to=message.to,
                from_=sender,
                url=urls.of("twiml"),
                method="POST",
                status_callback=urls.of("status"),
                status_callback_method="POST",
                timeout=RING_SECONDS,
                machine_detection="DetectMessageEnd",
            )

    async def find_sent(self, message: OutgoingMessage) -> ProviderOutcome | None:
        """The call an interrupted attempt placed, by the CallSid Twilio's callbacks recorded for this
        message. None once the grace period passed with no callback (Twilio never took the call);
        until then the attempt waits, as the call may be on its way."""
        async with self._sessions() as session:
            sid = await call_sid_of(session, message.id)
        if sid is not None and sid not in message.owned_elsewhere:
            return ProviderOutcome(status="queued", provider_message_id=sid)
        waited = datetime.now(UTC) - (message.attempted_at or message.created_at)
        if waited < self._grace:
            raise ProviderTemporaryError(
                "an interrupted call attempt waits for Twilio's callback before calling again",
                ambiguous=True,
                retry_after=(self._grace - waited).total_seconds(),
            )
        return None
