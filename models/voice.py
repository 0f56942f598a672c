"""A call's script (the `call` step, contract §6 "voice"): what is said, the keypad questions asked, and
what happens at the end (a transfer to a person, a voicemail recorded for a nurse), plus the message
left when an answering machine picks up and the retry policy for calls nobody answered.

Texts are Jinja2 like message bodies (`{{ patient.given }}`); they are rendered once, when the call is
recorded, and the rendered script is what Twilio is answered with for the whole call.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from models.base import DefinitionModel, TemporalModel
from models.durations import IsoDuration

QuestionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
Spoken = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
# Keypad keys a question accepts: `"12"` means 1 or 2.
Keys = Annotated[str, StringConstraints(pattern=r"^[0-9*#]+$", max_length=12)]
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
# How a call ended, as the events that carry it name it (`voice.<outcome>`).
CallOutcome = Literal["answered", "no_answer", "busy", "failed", "machine"]
CALL_EVENT_TYPES: dict[str, str] = {
    "answered": "voice.answered",
    "no_answer": "voice.no_answer",
    "busy": "voice.busy",
    "failed": "voice.failed",
    "machine": "voice.machine",
}


class GatherQuestion(DefinitionModel):
    """A spoken question answered on the keypad: the pressed keys become `answers.<id>`.

    `digits` are the keys allowed (with `num_digits` 1, each key is an answer); a key outside them, or
    no key within `timeout` seconds, gets `reprompt` (or the prompt again) up to `attempts` times; then
    `on_no_input` says whether the call goes on to the next question (`skip`) or ends (`hang_up`).
    """

    id: QuestionId
    prompt: Spoken
    digits: Keys = "0123456789"
    num_digits: int = Field(default=1, ge=1, le=12)
    timeout: int = Field(default=5, ge=1, le=60)
    reprompt: Spoken | None = None
    attempts: int = Field(default=2, ge=1, le=5)
    on_no_input: Literal["skip", "hang_up"] = "skip"


class RecordSpec(DefinitionModel):
    """Record a voicemail for a nurse after the questions (kept encrypted, never logged)."""

    prompt: Spoken = (
        "Please leave a message for your care team after the tone. Press the pound key when done."
    )
    max_length: int = Field(default=120, ge=5, le=600)


class TransferSpec(DefinitionModel):
    """Hand the patient over to a person after the questions, when the answer calls for it."""

    to: PhoneNumber
    say: Spoken | None = "Please hold while we connect you to your care team."
    # Only when this question got one of these keys (`{question: feeling, digits: "2"}`); else always.
    question: QuestionId | None = None
    digits: Keys | None = None


class CallRetries(DefinitionModel):
    """Call again when nobody answered or the line was busy: `attempts` more calls, `every` apart
    (each waits for the patient's calling hours like any send)."""

    attempts: int = Field(default=2, ge=1, le=5)
    every: IsoDuration = timedelta(hours=2)
    # How long to wait for a call's outcome before counting it as not answered.
    outcome_timeout: IsoDuration = timedelta(minutes=30)


class CallScript(DefinitionModel):
    """What a call says and asks. `say` is spoken first (or the body of the step's voice template in
    the patient's language, whose `prompts` then say the questions); `voicemail` is left on an
    answering machine (say no more than the minimum: no health details); without one, the call hangs
    up on a machine."""

    say: Spoken | None = None
    gather: list[GatherQuestion] = Field(default=[], max_length=10)
    transfer: TransferSpec | None = None
    record: RecordSpec | None = None
    voicemail: Spoken | None = None
    goodbye: Spoken | None = "Thank you. Goodbye."
    retries: CallRetries | None = None

    @model_validator(mode="after")
    def _questions_distinct(self) -> CallScript:
        ids = [question.id for question in self.gather]
        if len(set(ids)) != len(ids):
            raise ValueError("`gather` asks two questions with the same `id`")
        if self.transfer and self.transfer.question and self.transfer.question not in ids:
            raise ValueError(f"`transfer.question` {self.transfer.question!r} is not a `gather` question")
        return self


class RenderedCall(TemporalModel):
    """A call's script with its texts rendered for the patient: what the TwiML is built from."""

    script: CallScript
    language: str | None = None
