"""The TwiML a call is answered with, built from its durable record with the SDK's `VoiceResponse`.

Each answer is a function of the record and the request (which question, which attempt), so any API
instance, including one restarted mid-call, answers Twilio the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from models.voice import GatherQuestion, RenderedCall

VOICE_WEBHOOKS = "/webhooks/twilio/voice"
# Twilio's <Say> languages for the languages patients state (the region Twilio voices best).
SAY_LANGUAGES = {"en": "en-US", "es": "es-US", "fr": "fr-FR", "de": "de-DE", "pt": "pt-BR", "it": "it-IT"}


def say_language(language: str | None) -> str:
    """Twilio's `<Say language>` for a patient language tag (`es-MX` stays as it is; `es` → `es-US`)."""
    if not language:
        return "en-US"
    if "-" in language:
        return language
    return SAY_LANGUAGES.get(language.lower(), "en-US")


@dataclass(frozen=True)
class CallUrls:
    """The public URLs of a call's webhooks (on `PUBLIC_BASE_URL`)."""

    base: str
    message_id: str

    def of(self, kind: str, **more: str | int) -> str:
        """The URL of one of the call's webhooks (`twiml`, `gather`, `status`, `recording`)."""
        query = urlencode({"message_id": self.message_id, **{k: str(v) for k, v in more.items()}})
        return f"{self.base.rstrip('/')}{VOICE_WEBHOOKS}/{kind}?{query}"


def opening(call: RenderedCall, urls: CallUrls) -> VoiceResponse:
    """The start of the call: the greeting, then the first question (or the end)."""
    response = VoiceResponse()
    response.say(call.script.say or "", language=say_language(call.language))
    return _continue(response, call, urls, 0)


def question(call: RenderedCall, urls: CallUrls, position: int, attempt: int) -> VoiceResponse:
    """Ask question `position` (its re-prompt after the first attempt)."""
    return _ask(VoiceResponse(), call, urls, position, attempt)


def after_answer(call: RenderedCall, urls: CallUrls, position: int, answers: dict[str, str]) -> VoiceResponse:
    """What follows question `position`: the next question, or the end of the call."""
    return _continue(VoiceResponse(), call, urls, position + 1, answers)


def voicemail(call: RenderedCall) -> VoiceResponse:
    """On an answering machine: the minimal voicemail (if the script has one), then hang up."""
    return _said_then_hang_up(call, call.script.voicemail)


def goodbye(call: RenderedCall) -> VoiceResponse:
    """End the call politely."""
    return _said_then_hang_up(call, call.script.goodbye)


def _said_then_hang_up(call: RenderedCall, text: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if text:
        response.say(text, language=say_language(call.language))
    response.hangup()
    return response


def accepts(question: GatherQuestion, digits: str | None) -> bool:
    """Whether the keys pressed answer the question."""
    if not digits or len(digits) != question.num_digits:
        return False
    return all(key in question.digits for key in digits)


def transfers(call: RenderedCall, answers: dict[str, str]) -> bool:
    """Whether the call hands over to a person at its end, given the answers."""
    transfer = call.script.transfer
    if transfer is None:
        return False
    if transfer.question is None:
        return True
    answer = answers.get(transfer.question)
    return answer is not None and (transfer.digits is None or answer in transfer.digits)


def _continue(
    response: VoiceResponse,
    call: RenderedCall,
    urls: CallUrls,
    position: int,
    answers: dict[str, str] | None = None,
) -> VoiceResponse:
    if position < len(call.script.gather):
        return _ask(response, call, urls, position, 1)
    return _closing(response, call, urls, answers or {})


def _ask(
    response: VoiceResponse, call: RenderedCall, urls: CallUrls, position: int, attempt: int
) -> VoiceResponse:
    asked = call.script.gather[position]
    gather = Gather(
        input="dtmf",
        num_digits=asked.num_digits,
        timeout=asked.timeout,
        action=urls.of("gather", question=position, attempt=attempt),
        method="POST",
        action_on_empty_result=True,
    )
    prompt = asked.reprompt if attempt > 1 and asked.reprompt else asked.prompt
    gather.say(prompt, language=say_language(call.language))
    response.append(gather)
    return response


def _closing(
    response: VoiceResponse, call: RenderedCall, urls: CallUrls, answers: dict[str, str]
) -> VoiceResponse:
    language = say_language(call.language)
    script = call.script
    if transfers(call, answers):
        assert script.transfer is not None
        if script.transfer.say:
            response.say(script.transfer.say, language=language)
        response.dial(script.transfer.to)
        return response
    if script.record is not None:
        response.say(script.record.prompt, language=language)
        response.record(
            action=urls.of("recording"),
            method="POST",
            max_length=script.record.max_length,
            finish_on_key="#",
            play_beep=True,
        )
        return response
    if script.goodbye:
        response.say(script.goodbye, language=language)
    response.hangup()
    return response
