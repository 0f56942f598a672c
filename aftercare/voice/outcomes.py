"""What Twilio's call callbacks mean: the call's outcome on its record and its message, and the
`voice.*` event for the patient's journey (delivered once per call and outcome)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.event_triggers import deliver_event
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.store.messages import update_message
from models.voice import CALL_EVENT_TYPES
from models.voice_tables import VoiceCall

# Twilio's final CallStatus → the call's outcome (a completed call answered by a machine is `machine`).
OUTCOME_OF_STATUS = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}
MESSAGE_STATUS_OF_OUTCOME = {
    "answered": "delivered",
    "machine": "delivered",
    "busy": "undelivered",
    "no_answer": "undelivered",
    "failed": "failed",
}


def is_machine(answered_by: str | None) -> bool:
    """Whether answering-machine detection says a machine (or a fax) picked up."""
    return bool(answered_by) and (answered_by or "").startswith(("machine", "fax"))


def outcome_of(call_status: str, answered_by: str | None) -> str:
    """The outcome of a call that ended with this status."""
    outcome = OUTCOME_OF_STATUS.get(call_status, "failed")
    return "machine" if outcome == "answered" and is_machine(answered_by) else outcome


@dataclass(frozen=True)
class CallEvent:
    """A `voice.*` event ready to deliver, read from the call's record inside its transaction."""

    patient_id: str
    event_type: str
    event_id: str
    data: dict[str, Any]


def call_event(call: VoiceCall, outcome: str) -> CallEvent:
    """The event telling the journey how the call went (`answers` per question when answered)."""
    data: dict[str, Any] = {
        "call_id": call.message_id,
        "step_id": call.step_id,
        "outcome": outcome,
        "answers": dict(call.answers or {}),
        "transferred": call.transferred,
    }
    if call.duration_seconds is not None:
        data["duration"] = call.duration_seconds
    return CallEvent(
        patient_id=call.patient_id,
        event_type=CALL_EVENT_TYPES[outcome],
        event_id=f"voice:{call.message_id}:{outcome}",
        data=data,
    )


async def settle_call(session: AsyncSession, call: VoiceCall, outcome: str) -> CallEvent:
    """Record the call's outcome on it and its message (once: a later callback does not change it)."""
    if call.outcome is None:
        call.outcome = outcome
        await update_message(session, call.message_id, status=MESSAGE_STATUS_OF_OUTCOME[outcome])
    return call_event(call, call.outcome)


async def tell_journey(
    sessions: async_sessionmaker[AsyncSession], temporal: Client, starter: EnrollmentStarter, event: CallEvent
) -> None:
    """Deliver the call's event to the patient's journeys (after the call's transaction committed)."""
    await deliver_event(
        sessions,
        temporal,
        starter,
        event_type=event.event_type,
        patient_id=event.patient_id,
        data=event.data,
        event_id=event.event_id,
    )
