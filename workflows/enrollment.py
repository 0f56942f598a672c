"""The enrollment workflow: one patient going through one journey version.

It owns the Temporal surface: the `deliver_event` signal, the `state` query, the `pause` and `resume`
updates, and how the run ends (completed, exited, cancelled, failed). The journey itself runs through
the step library (`workflows/steps.py`): a definition through the interpreter, a code journey by
calling its `run(steps)`.

Events reach the workflow as signals. A `wait_for` step takes the first matching event that arrived
since the step before it began, so a reply that races the send it answers is not lost. Exit rules are
checked for every event, between steps and while waiting or paused.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.temporal import EnrollmentInput, EnrollmentResult, EnrollmentState, PatientEvent, PauseRequest
    from models.workflow_names import (
        DELIVER_EVENT,
        ENROLLMENT_WORKFLOW,
        PAUSE_UPDATE,
        RESUME_UPDATE,
        STATE_QUERY,
    )
    from workflows.code_journeys import code_journey
    from workflows.interpreter import interpret
    from workflows.steps import JourneyEndedError, JourneyExitedError, JourneySteps
    from workflows.support import StepFailedError


@workflow.defn(name=ENROLLMENT_WORKFLOW)
class EnrollmentWorkflow:
    """Runs a journey for one patient."""

    def __init__(self) -> None:
        self._steps: JourneySteps | None = None
        self._early_events: list[PatientEvent] = []

    # --- handlers -------------------------------------------------------------------------------

    @workflow.signal(name=DELIVER_EVENT)
    def deliver_event(self, event: PatientEvent) -> None:
        """A patient event (a reply, a booking, a completed task); repeats of an event id are ignored."""
        if self._steps is None:
            self._early_events.append(event)
        else:
            self._steps.receive(event)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> EnrollmentState:
        """Status, current step, pause, outcome and the latest steps."""
        if self._steps is None:
            return EnrollmentState(status="running")
        return self._steps.state()

    @workflow.update(name=PAUSE_UPDATE)
    async def pause(self, request: PauseRequest) -> EnrollmentState:
        """Hold the journey before its next step (a wait in progress runs to its end first)."""
        return await self._ready().set_paused(True, request.reason)

    @pause.validator
    def _validate_pause(self, request: PauseRequest) -> None:
        if self._steps is not None and (self._steps.paused or self._steps.status != "running"):
            raise ApplicationError("the enrollment is already paused or has ended", type="InvalidState")

    @workflow.update(name=RESUME_UPDATE)
    async def resume(self, request: PauseRequest) -> EnrollmentState:
        """Let a paused journey go on."""
        return await self._ready().set_paused(False, request.reason)

    @resume.validator
    def _validate_resume(self, request: PauseRequest) -> None:
        if self._steps is None or not self._steps.paused or self._steps.status != "running":
            raise ApplicationError("the enrollment is not paused", type="InvalidState")

    # --- the run --------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: EnrollmentInput) -> EnrollmentResult:
        """Run the journey until it ends, an exit rule fires, or it is cancelled."""
        steps = self._steps = JourneySteps(request)
        for event in self._early_events:
            steps.receive(event)
        try:
            if request.journey.code:
                outcome = await code_journey(request.journey.key).run(steps) or "completed"
            else:
                start_at = request.resume.position if request.resume else None
                outcome = await interpret(steps, request.journey, start_at)
        except JourneyEndedError as ended:
            outcome = ended.outcome
        except JourneyExitedError as exited:
            await steps.finish("exited", exited.outcome, f"exit on {exited.event.type}")
            return EnrollmentResult(status="exited", outcome=exited.outcome)
        except asyncio.CancelledError:
            await steps.finish("cancelled", "cancelled", "cancelled by request")
            raise
        except StepFailedError as failure:
            await steps.finish("failed", "error", f"{failure.step_id}: {failure.reason}")
            raise ApplicationError(
                f"step {failure.step_id!r} failed: {failure.reason}", type="StepFailed", non_retryable=True
            ) from None
        await steps.finish("completed", outcome)
        return EnrollmentResult(status="completed", outcome=outcome)

    def _ready(self) -> JourneySteps:
        assert self._steps is not None, "the workflow has not started its run"
        return self._steps
