"""Calls through Twilio's Calls API (the real `twilio` SDK against Prism serving Twilio's own spec): a
call step's message is one call, recorded with its rendered script; a retry or a replacement worker
never places a second call, finding an interrupted one by the identity Twilio's callbacks report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.messaging.providers import OutgoingMessage, ProviderOutcome
from aftercare.guardrails import GuardrailPolicy
from aftercare.settings import Settings
from models.tables import Message, Patient
from models.voice import RenderedCall
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.helpers import RecordingProvider, load_synthea_patient, with_twilio
from tests.voice_calls import call_request, calls, place_call, twilio_says, voice_provider

pytestmark = pytest.mark.usefixtures("empty_database")


class WorkerDiesAfterPlacing(RecordingProvider):
    """The real provider places the call; then the worker dies before the outcome is recorded."""

    async def send(self, message: OutgoingMessage) -> ProviderOutcome:
        await super().send(message)
        raise RuntimeError("the worker was killed")


async def messages(sessions: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sessions() as session:
        return list(await session.scalars(select(Message)))


async def test_a_call_step_places_one_call_and_records_its_rendered_script(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    await load_synthea_patient(sessions)
    provider = RecordingProvider(voice_provider(sessions, twilio_mock))

    first = await place_call(sessions, provider)
    again = await place_call(sessions, provider)

    assert first == again
    assert provider.calls == ["send"]
    [message] = await messages(sessions)
    assert (message.channel, message.status, message.provider) == ("voice", "queued", "twilio-voice")
    assert (message.provider_message_id or "").startswith("CA")
    assert message.body == "Hello Abdul, this is your care team checking on you after your discharge."
    [call] = await calls(sessions)
    script = RenderedCall.model_validate(call.script).script
    assert script.say == message.body
    assert [question.id for question in script.gather] == ["feeling", "medicines"]


async def test_a_patient_who_withdrew_consent_for_calls_is_not_called(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    from aftercare.store.consents import record_consent

    patient = await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await record_consent(session, [patient["id"]], "voice", "revoked", "phone-call")
    provider = RecordingProvider(voice_provider(sessions, twilio_mock))

    result = await place_call(sessions, provider)

    assert result.status == "skipped"
    assert "withdrew consent" in (result.reason or "")
    assert provider.calls == []
    assert await calls(sessions) == []


async def test_a_call_has_its_own_consent_a_stop_texted_does_not_silence_calls(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    from aftercare.store.consents import record_consent

    patient = await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await record_consent(session, [patient["id"]], "sms", "revoked", "sms-keyword")
    result = await place_call(sessions, voice_provider(sessions, twilio_mock))
    assert result.status == "queued"


async def test_a_call_due_in_quiet_hours_waits_for_calling_hours_unless_urgent(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    await load_synthea_patient(sessions)
    provider = RecordingProvider(voice_provider(sessions, twilio_mock))
    policy = GuardrailPolicy(quiet_hours=(time(21), time(8)))
    night = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)  # 03:00 in New York

    deferred = await place_call(
        sessions, provider, call_request().model_copy(update={"due_at": night}), policy
    )
    assert (deferred.status, deferred.rule) == ("deferred", "quiet_hours")
    assert deferred.defer_until == datetime(2027, 1, 15, 13, 0, tzinfo=UTC)
    assert provider.calls == []

    urgent = call_request({"say": "Please call the ward.", "urgent": True}, step="urgent-call")
    placed = await place_call(sessions, provider, urgent.model_copy(update={"due_at": night}), policy)
    assert placed.status == "queued"
    assert provider.calls == ["send"]


async def test_a_patient_without_a_phone_is_not_called(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await session.execute(update(Patient).values(phone=None, phone_status="missing"))
    result = await place_call(sessions, RecordingProvider(voice_provider(sessions, twilio_mock)))
    assert (result.status, result.reason) == ("skipped", "the patient has no phone number")


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    return with_twilio(settings, "voice-crash", twilio_mock, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL)


async def test_a_worker_killed_after_placing_the_call_never_places_a_second_one(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str, api: httpx.AsyncClient
) -> None:
    await load_synthea_patient(sessions)
    dying = WorkerDiesAfterPlacing(voice_provider(sessions, twilio_mock))
    with pytest.raises(RuntimeError):
        await place_call(sessions, dying)
    [message] = await messages(sessions)
    assert (message.status, message.provider_message_id) == ("sending", None)
    # Twilio took the call: its first status callback names our message and the call's sid.
    initiated = await twilio_says(
        api, "status", message.id, {"CallSid": "CA" + "7" * 32, "CallStatus": "initiated"}
    )
    assert initiated.status_code == 204

    replacement = RecordingProvider(voice_provider(sessions, twilio_mock))
    result = await place_call(sessions, replacement)

    assert dying.calls == ["send"]
    assert replacement.calls == ["find_sent"]
    assert result.status == "queued"
    [message] = await messages(sessions)
    assert (message.status, message.provider_message_id) == ("queued", "CA" + "7" * 32)


async def test_a_call_that_ended_before_the_dead_worker_s_attempt_is_retried_keeps_its_outcome(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str, api: httpx.AsyncClient
) -> None:
    await load_synthea_patient(sessions)
    with pytest.raises(RuntimeError):
        await place_call(sessions, WorkerDiesAfterPlacing(voice_provider(sessions, twilio_mock)))
    [message] = await messages(sessions)
    unanswered = {"CallSid": "CA" + "8" * 32, "CallStatus": "no-answer"}
    assert (await twilio_says(api, "status", message.id, unanswered)).status_code == 204

    replacement = RecordingProvider(voice_provider(sessions, twilio_mock))
    result = await place_call(sessions, replacement)

    assert replacement.calls == []
    assert result.status == "undelivered"
    [message] = await messages(sessions)
    assert (message.status, message.provider_message_id) == ("undelivered", "CA" + "8" * 32)


async def test_an_interrupted_call_with_no_callback_waits_out_the_grace_period_before_calling_again(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    await load_synthea_patient(sessions)
    with pytest.raises(RuntimeError):
        await place_call(sessions, WorkerDiesAfterPlacing(voice_provider(sessions, twilio_mock)))

    patient = RecordingProvider(voice_provider(sessions, twilio_mock))
    with pytest.raises(ApplicationError) as waiting:
        await place_call(sessions, patient)
    assert waiting.value.type == "ProviderUnavailable"
    assert patient.calls == ["find_sent"]
    [message] = await messages(sessions)
    assert message.status == "sending"

    # No callback ever came: Twilio never took the call, so it is placed (once) now.
    after_grace = RecordingProvider(voice_provider(sessions, twilio_mock, callback_grace=timedelta(0)))
    result = await place_call(sessions, after_grace)
    assert after_grace.calls == ["find_sent", "send"]
    assert result.status == "queued"


async def test_a_fallback_order_with_voice_calls_when_texts_cannot_reach_the_patient(
    sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    from aftercare.store.consents import record_consent
    from models.journey import SendSpec
    from tests.helpers import send_request

    patient = await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await record_consent(session, [patient["id"]], "sms", "revoked", "sms-keyword")
    provider = RecordingProvider(voice_provider(sessions, twilio_mock))
    spec = SendSpec(channel="best", fallback=["sms", "voice", "letter"], body="Hello {{ patient.given }}.")

    result = await place_call(sessions, provider, send_request(spec))

    assert (result.status, result.channel) == ("queued", "voice")
    assert provider.calls == ["send"]
    [call] = await calls(sessions)
    assert RenderedCall.model_validate(call.script).script.say == "Hello Abdul."
