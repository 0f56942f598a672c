"""Twilio's voice webhooks for a placed call: only signed requests are answered; the TwiML comes from the
call's durable record (a restarted API answers mid-call); keys pressed are kept per question, a wrong or
missing key gets the re-prompt; the call's outcome becomes one `voice.*` event; a machine hears only
the voicemail; a voicemail left for a nurse is kept sealed, never in the clear."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.store.messages import record_intent
from aftercare.voice.recordings import open_recording
from models.tables import Message, TriggerEvent
from tests.aftercare.voice.twiml_round_trip import round_trip, verbs
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL, post_signed
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, serve
from tests.helpers import load_synthea_patient, with_twilio
from tests.voice_calls import TWO_QUESTIONS, call_request, calls, place_call, twilio_says, voice_provider

CALL_SID = "CA" + "5" * 32


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    return with_twilio(settings, "voice-webhooks", twilio_mock, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL)


@pytest.fixture
async def message_id(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> str:
    """A call placed for Abdul with the two questions (the API is up, the database empty before)."""
    await load_synthea_patient(sessions)
    result = await place_call(sessions, voice_provider(sessions, twilio_mock))
    assert result.message_id is not None
    return result.message_id


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, dict[str, Any]]]:
    async with sessions() as session:
        rows = await session.scalars(select(TriggerEvent).order_by(TriggerEvent.received_at))
        return [(row.type, row.data) for row in rows]


def said(response: httpx.Response) -> list[str | None]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    round_trip(response.text)
    return [text for verb, text in verbs(response.text) if verb == "Say"]


async def test_an_unsigned_or_forged_request_gets_no_twiml(api: httpx.AsyncClient, message_id: str) -> None:
    path = f"/webhooks/twilio/voice/twiml?message_id={message_id}"
    unsigned = await api.post(path, content=f"CallSid={CALL_SID}")
    forged = await post_signed(api, path, {"CallSid": CALL_SID}, token="not-the-auth-token")
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert "Hello" not in forged.text


async def test_the_call_greets_the_patient_and_asks_by_the_keypad(
    api: httpx.AsyncClient, message_id: str
) -> None:
    answer = await twilio_says(api, "twiml", message_id, {"CallSid": CALL_SID, "AnsweredBy": "human"})
    assert said(answer) == [
        "Hello Abdul, this is your care team checking on you after your discharge.",
        "Press 1 if you feel well, 2 if you feel worse.",
    ]


async def test_answers_are_kept_per_question_and_arrive_as_one_voice_answered_event(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], message_id: str
) -> None:
    await twilio_says(api, "twiml", message_id, {"CallSid": CALL_SID, "AnsweredBy": "human"})
    first = await twilio_says(
        api, "gather", message_id, {"CallSid": CALL_SID, "Digits": "2"}, question=0, attempt=1
    )
    assert said(first) == ["Did you pick up your medicines? Press 1 for yes, 2 for no."]
    assert await events(sessions) == []

    last = await twilio_says(
        api, "gather", message_id, {"CallSid": CALL_SID, "Digits": "1"}, question=1, attempt=1
    )
    assert said(last) == ["Thank you. Goodbye."]
    completed = {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "48"}
    assert (await twilio_says(api, "status", message_id, completed)).status_code == 204

    [(event_type, data)] = await events(sessions)
    assert event_type == "voice.answered"
    assert data["answers"] == {"feeling": "2", "medicines": "1"}
    assert (data["call_id"], data["step_id"]) == (message_id, "check-call")
    [call] = await calls(sessions)
    assert (call.call_sid, call.outcome, call.duration_seconds) == (CALL_SID, "answered", 48)


async def test_a_key_not_offered_gets_the_reprompt_and_silence_moves_on(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], message_id: str
) -> None:
    await twilio_says(api, "gather", message_id, {"CallSid": CALL_SID, "Digits": "1"}, question=0, attempt=1)
    wrong = await twilio_says(
        api, "gather", message_id, {"CallSid": CALL_SID, "Digits": "7"}, question=1, attempt=1
    )
    assert said(wrong) == ["Sorry, press 1 for yes or 2 for no."]
    silent = await twilio_says(
        api, "gather", message_id, {"CallSid": CALL_SID, "Digits": ""}, question=1, attempt=2
    )
    assert said(silent) == ["Thank you. Goodbye."]
    [(event_type, data)] = await events(sessions)
    assert (event_type, data["answers"]) == ("voice.answered", {"feeling": "1"})


async def test_a_restarted_api_still_answers_twilio_mid_call(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    api: httpx.AsyncClient,
    message_id: str,
) -> None:
    from api.app import create_app

    await twilio_says(api, "twiml", message_id, {"CallSid": CALL_SID})
    await twilio_says(api, "gather", message_id, {"CallSid": CALL_SID, "Digits": "2"}, question=0, attempt=1)

    async with serve(create_app(api_settings, temporal=dev_server.client), AUTH_HEADERS) as restarted:
        answer = await twilio_says(
            restarted, "gather", message_id, {"CallSid": CALL_SID, "Digits": "1"}, question=1, attempt=1
        )
    assert said(answer) == ["Thank you. Goodbye."]


@pytest.mark.parametrize(
    ("call_status", "event_type", "message_status"),
    [
        ("no-answer", "voice.no_answer", "undelivered"),
        ("busy", "voice.busy", "undelivered"),
        ("failed", "voice.failed", "failed"),
    ],
)
async def test_a_call_not_answered_ends_in_its_event_once(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    message_id: str,
    call_status: str,
    event_type: str,
    message_status: str,
) -> None:
    for _ in range(2):  # Twilio retries a callback it thinks failed
        answered = await twilio_says(
            api, "status", message_id, {"CallSid": CALL_SID, "CallStatus": call_status}
        )
        assert answered.status_code == 204
    assert [kind for kind, _ in await events(sessions)] == [event_type]
    async with sessions() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    assert message.status == message_status


async def test_a_machine_hears_only_the_voicemail_and_the_journey_hears_voice_machine(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], message_id: str
) -> None:
    answer = await twilio_says(
        api, "twiml", message_id, {"CallSid": CALL_SID, "AnsweredBy": "machine_end_beep"}
    )
    assert said(answer) == [TWO_QUESTIONS["voicemail"]]
    assert "Abdul" not in answer.text
    await twilio_says(api, "status", message_id, {"CallSid": CALL_SID, "CallStatus": "completed"})
    assert [kind for kind, _ in await events(sessions)] == ["voice.machine"]


async def test_a_voicemail_left_for_a_nurse_is_kept_sealed(
    api: httpx.AsyncClient,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    twilio_mock: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await load_synthea_patient(sessions)
    script = {"say": "Hello.", "record": {"max_length": 60}}
    placed = await place_call(sessions, voice_provider(sessions, twilio_mock), call_request(script))
    assert placed.message_id is not None
    opening = await twilio_says(api, "twiml", placed.message_id, {"CallSid": CALL_SID})
    assert [verb for verb, _ in verbs(opening.text)] == ["Say", "Say", "Record"]

    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "9" * 32
    params = {"CallSid": CALL_SID, "RecordingUrl": url, "RecordingDuration": "12"}
    answer = await twilio_says(api, "recording", placed.message_id, params)

    assert said(answer) == ["Thank you. Goodbye."]
    [call] = await calls(sessions)
    assert call.recording_sealed is not None
    assert url.encode() not in call.recording_sealed
    assert (open_recording(api_settings, call), call.recording_seconds) == (url, 12)
    assert url not in caplog.text


async def test_a_patient_who_feels_worse_is_put_through_to_the_care_team(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], twilio_mock: str
) -> None:
    await load_synthea_patient(sessions)
    script = {**TWO_QUESTIONS, "gather": TWO_QUESTIONS["gather"][:1]}
    script["transfer"] = {"to": "+15550100100", "question": "feeling", "digits": "2"}
    placed = await place_call(sessions, voice_provider(sessions, twilio_mock), call_request(script))
    assert placed.message_id is not None

    answer = await twilio_says(
        api, "gather", placed.message_id, {"CallSid": CALL_SID, "Digits": "2"}, question=0, attempt=1
    )

    assert said(answer) == ["Please hold while we connect you to your care team."]
    assert ("Dial", "+15550100100") in verbs(answer.text)
    [(event_type, data)] = await events(sessions)
    assert (event_type, data["answers"], data["transferred"]) == ("voice.answered", {"feeling": "2"}, True)


async def test_a_call_recorded_without_a_script_says_its_message(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # A campaign's call: the message alone, its text the whole script.
    await load_synthea_patient(sessions)
    async with sessions.begin() as session:
        await record_intent(
            session,
            {
                "id": "campaign-call-1",
                "idempotency_key": "run-1/abdul",
                "patient_id": ABDUL_PATIENT_ID,
                "channel": "voice",
                "to": "+15559784581",
                "body": "Flu shots are available at the clinic this week.",
                "status": "queued",
                "provider": "twilio-voice",
                "provider_message_id": CALL_SID,
            },
            sent_now=True,
        )

    answer = await twilio_says(api, "twiml", "campaign-call-1", {"CallSid": CALL_SID})
    assert said(answer) == ["Flu shots are available at the clinic this week.", "Thank you. Goodbye."]
    await twilio_says(api, "status", "campaign-call-1", {"CallSid": CALL_SID, "CallStatus": "busy"})
    assert [kind for kind, _ in await events(sessions)] == ["voice.busy"]
    missing = await twilio_says(api, "twiml", "no-such-message", {"CallSid": CALL_SID})
    assert missing.status_code == 404
