"""The `call` step: a `voice` send whose message carries the call's script.

The call goes through the one send path (consent for the `voice` channel and the purpose, quiet hours,
caps, the PHI rule, the send intent and its idempotency key), so it is placed at most once per visit
of the step. How the call went arrives later as a `voice.*` event that `wait_for`, `branch` and exit
rules use. Runs inside workflows: no I/O but through the steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.base import TemporalModel
from models.journey import CallSpec
from models.voice import CallScript

if TYPE_CHECKING:
    from workflows.steps import JourneySteps


class CallResult(TemporalModel):
    """The call's message (its id names the call in `voice.*` events as `call_id`) and its status."""

    message_id: str | None = None
    status: str
    reason: str | None = None


def script_of(spec: CallSpec) -> CallScript:
    """The script part of a `call` step (without the send's purpose and urgency)."""
    return CallScript.model_validate(spec.model_dump(exclude={"purpose", "urgent"}))


async def place_call(steps: JourneySteps, spec: CallSpec, *, step: str, name: str | None) -> CallResult:
    """Place one call through the send path; `voice.*` events report how it went."""
    asked = len(spec.gather)
    label = name or f"Calling the patient ({asked} question{'s' if asked != 1 else ''})"
    sent = await steps.send(
        channel="voice",
        body=spec.say,
        step=step,
        name=label,
        purpose=spec.purpose,
        urgent=spec.urgent,
        script=script_of(spec),
    )
    return CallResult(message_id=sent.message_id, status=sent.status, reason=sent.reason)
