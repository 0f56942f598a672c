"""Twilio's voice webhooks for the calls Aftercare places: the TwiML of each call (served from the
call's durable record), the keys pressed for each question, the call's progress, and a voicemail left
for a nurse. Every request is verified with `X-Twilio-Signature` (the SDK's `RequestValidator`)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.twiml.voice_response import VoiceResponse

from aftercare.metrics import PROVIDER_WEBHOOKS
from aftercare.provider_feedback.twilio_status import PROVIDER
from aftercare.voice import twiml
from aftercare.voice.calls import FINAL_CALL_STATUSES, ensure_call, note_identity, rendered_of
from aftercare.voice.outcomes import CallEvent, is_machine, outcome_of, settle_call, tell_journey
from aftercare.voice.recordings import seal_recording
from api.deps import ServicesDep
from api.routes.webhooks.twilio import verified_params
from api.services import Services
from models.voice_tables import VoiceCall

router = APIRouter(prefix="/webhooks/twilio/voice", tags=["webhooks"])
log = logging.getLogger(__name__)
_TWIML = "application/xml"


def _answer(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type=_TWIML)


def _query_int(request: Request, name: str) -> int:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"the query parameter {name} must be a number"
        ) from error


def _message_id(request: Request) -> str:
    message_id = request.query_params.get("message_id")
    if not message_id:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the query parameter message_id is missing")
    return message_id


def _urls(services: Services, message_id: str) -> twiml.CallUrls:
    return twiml.CallUrls(services.settings.public_base_url or "", message_id)


async def _known_call(session: AsyncSession, message_id: str, call_sid: str | None) -> VoiceCall:
    """The call's record, locked, with the CallSid Twilio named; 404 when no such call is recorded."""
    call = await ensure_call(session, message_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no call is recorded for this message")
    await note_identity(session, call, call_sid)
    return call


async def _tell(services: Services, event: CallEvent | None) -> None:
    if event is not None:
        await tell_journey(services.sessions, services.temporal, services.starter, event)


@router.post("/twiml", response_class=Response)
async def call_twiml(request: Request, services: ServicesDep) -> Response:
    """A call was picked up: its greeting and first question, or the voicemail when a machine answered."""
    params = await verified_params(request, services.settings, "voice")
    message_id = _message_id(request)
    event = None
    async with services.sessions.begin() as session:
        call = await _known_call(session, message_id, params.get("CallSid"))
        call.answered_by = params.get("AnsweredBy") or call.answered_by
        rendered = rendered_of(call)
        if is_machine(call.answered_by):
            event = await settle_call(session, call, "machine")
    PROVIDER_WEBHOOKS.labels(PROVIDER, "voice", "applied").inc()
    if event is not None:
        await _tell(services, event)
        return _answer(twiml.voicemail(rendered))
    return _answer(twiml.opening(rendered, _urls(services, message_id)))


@router.post("/gather", response_class=Response)
async def call_gather(request: Request, services: ServicesDep) -> Response:
    """The keys pressed for a question (or none): the next question, a re-prompt, or the call's end."""
    params = await verified_params(request, services.settings, "voice")
    message_id = _message_id(request)
    position, attempt = _query_int(request, "question"), _query_int(request, "attempt")
    urls = _urls(services, message_id)
    event = None
    async with services.sessions.begin() as session:
        call = await _known_call(session, message_id, params.get("CallSid"))
        rendered = rendered_of(call)
        questions = rendered.script.gather
        if not 0 <= position < len(questions):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the call has no such question")
        asked = questions[position]
        answers = dict(call.answers or {})
        digits = params.get("Digits")
        finished, hung_up = position + 1 >= len(questions), False
        if twiml.accepts(asked, digits):
            answers[asked.id] = digits or ""
            call.answers = answers
            response = twiml.after_answer(rendered, urls, position, answers)
        elif attempt < asked.attempts:
            response, finished = twiml.question(rendered, urls, position, attempt + 1), False
        elif asked.on_no_input == "hang_up":
            response, finished, hung_up = twiml.goodbye(rendered), True, True
        else:
            response = twiml.after_answer(rendered, urls, position, answers)
        if finished:
            call.transferred = twiml.transfers(rendered, answers) and not hung_up
            event = await settle_call(session, call, "answered")
    PROVIDER_WEBHOOKS.labels(PROVIDER, "voice", "applied").inc()
    await _tell(services, event)
    return _answer(response)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def call_status(request: Request, services: ServicesDep) -> Response:
    """A call's progress (initiated, ringing, answered, completed, busy, no-answer, failed): the first
    callback records Twilio's CallSid for the message; the final one settles the call's outcome."""
    params = await verified_params(request, services.settings, "voice")
    message_id = _message_id(request)
    call_status_name = params.get("CallStatus", "")
    event = None
    async with services.sessions.begin() as session:
        call = await ensure_call(session, message_id)
        if call is not None:
            await note_identity(session, call, params.get("CallSid"))
            call.status = call_status_name or call.status
            call.answered_by = params.get("AnsweredBy") or call.answered_by
            if (duration := params.get("CallDuration")) and duration.isdigit():
                call.duration_seconds = int(duration)
            if call_status_name in FINAL_CALL_STATUSES:
                event = await settle_call(session, call, outcome_of(call_status_name, call.answered_by))
    PROVIDER_WEBHOOKS.labels(PROVIDER, "voice", "applied" if call is not None else "ignored").inc()
    await _tell(services, event)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/recording", response_class=Response)
async def call_recording(request: Request, services: ServicesDep) -> Response:
    """A voicemail the patient left for a nurse: its recording kept sealed (never logged); goodbye."""
    params = await verified_params(request, services.settings, "voice")
    message_id = _message_id(request)
    async with services.sessions.begin() as session:
        call = await _known_call(session, message_id, params.get("CallSid"))
        sealed = seal_recording(services.settings, params.get("RecordingUrl"))
        if sealed is not None:
            call.recording_key_id, call.recording_sealed = sealed.key_id, sealed.data
        if (seconds := params.get("RecordingDuration")) and seconds.isdigit():
            call.recording_seconds = int(seconds)
        rendered = rendered_of(call)
    log.info("voicemail recorded", extra={"message_id": message_id, "kept": sealed is not None})
    return _answer(twiml.goodbye(rendered))
