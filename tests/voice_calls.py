"""Calls for tests: a `call` step's send placed through the real send activity and the real Twilio SDK
(against Prism serving Twilio's spec), and Twilio's voice webhooks signed as Twilio signs them."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import MessageProvider, ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.twilio_voice import TwilioVoiceProvider
from aftercare.guardrails import GuardrailPolicy
from models.journey import CallSpec, SendSpec
from models.temporal import SendMessageInput, SendMessageResult
from models.voice_tables import VoiceCall
from tests.api.webhooks.twilio_signing import PUBLIC_BASE_URL, post_signed
from tests.helpers import TWILIO_ACCOUNT_SID, send_request
from workflows.calls import script_of

TWO_QUESTIONS: dict[str, Any] = {
    "say": "Hello {{ patient.given }}, this is your care team checking on you after your discharge.",
    "gather": [
        {"id": "feeling", "prompt": "Press 1 if you feel well, 2 if you feel worse.", "digits": "12"},
        {
            "id": "medicines",
            "prompt": "Did you pick up your medicines? Press 1 for yes, 2 for no.",
            "digits": "12",
            "reprompt": "Sorry, press 1 for yes or 2 for no.",
        },
    ],
    "voicemail": "This is your care team calling. Please call us back. Goodbye.",
}


def voice_provider(
    sessions: async_sessionmaker[AsyncSession], twilio_url: str, **options: Any
) -> TwilioVoiceProvider:
    """The voice provider on Prism, with webhooks on the tests' public base URL."""
    return TwilioVoiceProvider(
        sessions,
        TWILIO_ACCOUNT_SID,
        "auth-token",
        "+15005550006",
        PUBLIC_BASE_URL,
        base_url=twilio_url,
        **options,
    )


def call_request(
    script: dict[str, Any] | None = None, *, step: str = "check-call", visit: int = 1
) -> SendMessageInput:
    """The send activity's input for a `call` step."""
    spec = CallSpec.model_validate(script or TWO_QUESTIONS)
    request = send_request(
        SendSpec(channel="voice", body=spec.say, purpose=spec.purpose, urgent=spec.urgent),
        step=step,
        visit=visit,
    )
    return request.model_copy(update={"script": script_of(spec)})


async def place_call(
    sessions: async_sessionmaker[AsyncSession],
    provider: MessageProvider,
    request: SendMessageInput | None = None,
    guardrails: GuardrailPolicy | None = None,
) -> SendMessageResult:
    """Run the send activity for a call step once (under these guardrails)."""
    registry = ProviderRegistry({"voice": provider}, OutboxProvider())
    activities = MessagingActivities(sessions, registry, "America/New_York", guardrails)
    result: SendMessageResult = await ActivityEnvironment().run(
        activities.send_message, request or call_request()
    )
    return result


async def calls(sessions: async_sessionmaker[AsyncSession]) -> list[VoiceCall]:
    """Every recorded call."""
    async with sessions() as session:
        return list(await session.scalars(select(VoiceCall)))


async def twilio_says(
    api: httpx.AsyncClient, kind: str, message_id: str, params: dict[str, str], **query: str | int
) -> httpx.Response:
    """A signed request of Twilio's to one of a call's voice webhooks."""
    extra = "".join(f"&{name}={value}" for name, value in query.items())
    return await post_signed(api, f"/webhooks/twilio/voice/{kind}?message_id={message_id}{extra}", params)
