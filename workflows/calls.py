"""The `call` step: a `voice` send whose message carries the call's script.

The call goes through the one send path (consent for the `voice` channel and the purpose, quiet hours,
caps, the PHI rule, the send intent and its idempotency key), so it is placed at most once per visit
of the step. How the call went arrives as a `voice.*` event that `wait_for`, `branch` and exit rules
use. With `retries` (or `on_unanswered`) the step waits for that outcome without consuming the event,
and calls again after `every` when nobody answered or the line was busy, each call a send of its own
(so each waits for calling hours). Runs inside workflows: no I/O but through the steps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

from models.base import TemporalModel
from models.journey import CallSpec
from models.temporal import PatientEvent
from models.voice import CALL_EVENT_TYPES, CallScript

if TYPE_CHECKING:
    from workflows.steps import JourneySteps

# Outcomes after which a retry policy calls again.
RETRIED_OUTCOMES = frozenset({"no_answer", "busy"})
# How long a step with `on_unanswered` but no retry policy waits for the call's outcome.
OUTCOME_TIMEOUT = timedelta(minutes=30)
_CALL_EVENTS = frozenset(CALL_EVENT_TYPES.values())


class CallResult(TemporalModel):
    """The last call's message (its id names the call in `voice.*` events as `call_id`), its status,
    how it ended when the step waited for that (`outcome`: answered, no_answer, busy, failed, machine,
    or None), and how many calls the step placed."""

    message_id: str | None = None
    status: str
    reason: str | None = None
    outcome: str | None = None
    calls: int = 0

    @property
    def answered(self) -> bool:
        """Whether a person answered the last call."""
        return self.outcome == "answered"


def script_of(spec: CallSpec) -> CallScript:
    """The script part of a `call` step (without its template, the send's purpose, urgency and jump)."""
    return CallScript.model_validate(
        spec.model_dump(exclude={"template", "purpose", "urgent", "on_unanswered"})
    )


async def place_call(steps: JourneySteps, spec: CallSpec, *, step: str, name: str | None) -> CallResult:
    """Place the call (and its retries) through the send path; see the module's docstring."""
    asked = len(spec.gather)
    label = name or f"Calling the patient ({asked} question{'s' if asked != 1 else ''})"
    waits = spec.retries is not None or spec.on_unanswered is not None
    attempts = 1 + (spec.retries.attempts if spec.retries else 0)
    result = CallResult(status="skipped")
    for attempt in range(1, attempts + 1):
        if attempt > 1 and spec.retries is not None:
            await steps.wait(
                spec.retries.every, step=f"{step}:retry", name=f"Waiting to call again ({attempt})"
            )
        sent = await steps.send(
            spec.template,
            channel="voice",
            body=spec.say,
            step=step,
            name=label if attempt == 1 else f"{label}, call {attempt} of {attempts}",
            purpose=spec.purpose,
            urgent=spec.urgent,
            script=script_of(spec),
        )
        result = CallResult(message_id=sent.message_id, status=sent.status, reason=sent.reason, calls=attempt)
        if not waits or sent.message_id is None or sent.status in ("skipped", "failed"):
            return result
        outcome = await _outcome(steps, sent.message_id, spec)
        result = result.model_copy(update={"outcome": outcome})
        if outcome not in RETRIED_OUTCOMES:
            return result
    return result


async def _outcome(steps: JourneySteps, message_id: str, spec: CallSpec) -> str:
    """How the call ended, from its `voice.*` event; `no_answer` when none came in time."""
    timeout = spec.retries.outcome_timeout if spec.retries else OUTCOME_TIMEOUT

    def of_this_call(event: PatientEvent) -> bool:
        return event.type in _CALL_EVENTS and event.data.get("call_id") == message_id

    until = workflow.now() + timeout
    event = await steps.watch(of_this_call, until, "Waiting for the call's outcome")
    if event is None:
        return "no_answer"
    return str(event.data.get("outcome") or event.type.removeprefix("voice."))
