"""The enrollment workflow: one patient going through one journey version, step by step.

The interpreter dispatches on the step's model type. Side effects (sending, reading patient data,
evaluating FHIRPath, which reads the clock) happen in activities; the workflow keeps the position,
the events received and the history, and mirrors them into search attributes, the current details
shown in the Temporal UI, and the enrollment's projection in the database.

Sends run as local activities (inside the workflow task, so a message goes out without another round
trip through the server); when a provider cannot take a message in time, the send is handed to a
regular activity whose retries and failures operators see in the Temporal UI. The send's idempotency
key (enrollment, step, visit) makes either path send at most once.

Events reach the workflow as `deliver_event` signals. A `wait_for` step takes the first matching event
that arrived since the step before it began, so a reply that races the send it answers is not lost.
Exit rules are checked for every event, between steps and while waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messaging.send import MessagingActivities
    from activities.options import DB_WRITE, EVALUATE, SEND_MESSAGE, SEND_MESSAGE_FAST
    from activities.store import StoreActivities
    from models.journey import (
        BranchOtherwise,
        BranchStep,
        BranchWhen,
        EndStep,
        ExitRule,
        JourneyDefinition,
        SendStep,
        Step,
        WaitForSpec,
        WaitForStep,
        WaitStep,
    )
    from models.search_attributes import CURRENT_STEP, ENROLLMENT_STATUS
    from models.temporal import (
        EnrollmentInput,
        EnrollmentResult,
        EnrollmentState,
        EnrollmentStatus,
        EvaluateConditionsInput,
        ExpressionScope,
        NextLocalTimeInput,
        PatientEvent,
        ProgressUpdate,
        SendMessageInput,
        SendMessageResult,
        StepRecord,
    )
    from workflows.support import (
        ACTIVITY_FAILURES,
        EventMatcher,
        StepFailedError,
        Transition,
        failure_reason,
        is_permanent,
    )


@workflow.defn(name="Enrollment")
class EnrollmentWorkflow:
    """Runs a journey definition for one patient."""

    def __init__(self) -> None:
        self._input: EnrollmentInput | None = None
        self._status: EnrollmentStatus = "running"
        self._outcome: str | None = None
        self._current: str | None = None
        self._history: list[StepRecord] = []
        self._unprojected: list[StepRecord] = []
        self._visits: dict[str, int] = {}
        self._events: list[PatientEvent] = []
        self._event_ids: set[str] = set()
        self._consumed: set[str] = set()
        self._entry_event_id: str | None = None
        self._checked_for_exit = 0
        self._exit: tuple[str, PatientEvent] | None = None
        self._last_event: PatientEvent | None = None
        self._step_marks = (0, 0)

    # --- handlers -------------------------------------------------------------------------------

    @workflow.signal(name="deliver_event")
    def deliver_event(self, event: PatientEvent) -> None:
        """A patient event (a reply, a booking); repeats of the same event id are ignored."""
        if event.id not in self._event_ids:
            self._event_ids.add(event.id)
            self._events.append(event)

    @workflow.query(name="state")
    def state(self) -> EnrollmentState:
        """Status, current step, outcome and the steps run so far."""
        return EnrollmentState(
            status=self._status, current_step=self._current, outcome=self._outcome, history=self._history
        )

    # --- the interpreter ------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: EnrollmentInput) -> EnrollmentResult:
        """Run the steps in order, following jumps, until the end, an exit event or cancellation."""
        self._input = request
        journey = request.journey
        self._current = journey.steps[0].id  # the starter set CurrentStep to it
        if request.trigger.event is not None:
            self.deliver_event(request.trigger.event)
            self._entry_event_id = request.trigger.event.id
            self._consumed.add(request.trigger.event.id)
        index = journey.step_index()
        position: int | None = 0
        try:
            while position is not None and position < len(journey.steps):
                await self._check_exit_rules()
                if self._exit is not None:
                    break
                step = journey.steps[position]
                self._enter(step)
                transition = await self._execute(step)
                self._record(step, transition)
                if transition.end_outcome is not None:
                    return await self._finish("completed", transition.end_outcome)
                position = index[transition.goto] if transition.goto is not None else position + 1
                if position < len(journey.steps) and self._needs_projection(journey.steps[position]):
                    await self._project("running", current_step=journey.steps[position].id)
            if self._exit is not None:
                outcome, event = self._exit
                return await self._finish("exited", outcome, f"exit on {event.type}")
            return await self._finish("completed", "completed")
        except asyncio.CancelledError:
            await self._finish("cancelled", "cancelled", "cancelled by request")
            raise
        except StepFailedError as failure:
            await self._finish("failed", "error", f"{failure.step_id}: {failure.reason}")
            raise ApplicationError(
                f"step {failure.step_id!r} failed: {failure.reason}", type="StepFailed", non_retryable=True
            ) from None

    async def _execute(self, step: Step) -> Transition:
        if isinstance(step, SendStep):
            transition = await self._send(step)
        elif isinstance(step, WaitStep):
            transition = await self._wait_step(step)
        elif isinstance(step, WaitForStep):
            transition = await self._wait_for(step)
        elif isinstance(step, BranchStep):
            transition = await self._branch(step)
        elif isinstance(step, EndStep):
            transition = Transition(result="ended", end_outcome=step.end.outcome)
        else:
            raise ApplicationError(f"unknown step kind {type(step).__name__}", non_retryable=True)
        if transition.goto is None and step.goto is not None and transition.end_outcome is None:
            transition = Transition(transition.result, transition.detail, goto=step.goto)
        return transition

    # --- steps ----------------------------------------------------------------------------------

    async def _send(self, step: SendStep) -> Transition:
        journey = self._journey()
        request = SendMessageInput(
            journey_key=journey.key,
            journey_version=journey.version,
            step_id=step.id,
            visit=self._visits[step.id],
            scope=self._scope(),
            send=step.send,
        )
        result: SendMessageResult
        try:
            result = await workflow.execute_local_activity_method(
                MessagingActivities.send_message,
                request,
                summary=step.describe(),
                **SEND_MESSAGE_FAST.options(),
            )
        except ACTIVITY_FAILURES as fast_failure:
            if is_permanent(fast_failure):
                raise StepFailedError(step.id, failure_reason(fast_failure)) from fast_failure
            try:
                result = await workflow.execute_activity_method(
                    MessagingActivities.send_message,
                    request,
                    summary=step.describe(),
                    **SEND_MESSAGE.options(),
                )
            except ActivityError as error:
                raise StepFailedError(step.id, failure_reason(error)) from error
        return Transition(result=result.status, detail=result.reason)

    async def _wait_step(self, step: WaitStep) -> Transition:
        if step.wait.duration is not None:
            duration = step.wait.duration
        else:
            assert step.wait.until is not None
            try:
                target = await workflow.execute_local_activity_method(
                    StoreActivities.next_local_time,
                    NextLocalTimeInput(
                        patient_id=self._input_or_fail().patient_id,
                        time=step.wait.until.time,
                        after=workflow.now(),
                    ),
                    **EVALUATE.options(),
                )
            except ACTIVITY_FAILURES as error:
                raise StepFailedError(step.id, failure_reason(error)) from error
            duration = max(target.at - workflow.now(), timedelta(0))
        interrupted = await self._wait(duration, lambda: False, step.describe())
        return Transition(result="exit" if interrupted else "waited")

    async def _wait_for(self, step: WaitForStep) -> Transition:
        spec = step.wait_for
        matcher = EventMatcher(self._events, self._step_marks[0], spec, self._matches)
        await matcher.scan()
        interrupted = matcher.found is not None or await self._wait(
            spec.timeout, lambda: matcher.found is not None, step.describe(), on_events=matcher.scan
        )
        if matcher.found is not None:
            self._consumed.add(matcher.found.id)
            self._last_event = matcher.found
            return Transition(result="event", detail=f"received {matcher.found.type}")
        if interrupted:
            return Transition(result="exit")
        return Transition(
            result="timeout", detail=f"no {spec.event} within the timeout", goto=spec.on_timeout
        )

    async def _branch(self, step: BranchStep) -> Transition:
        cases = [case for case in step.branch if isinstance(case, BranchWhen)]
        chosen = await self._first_true(step.id, [case.when for case in cases]) if cases else None
        if chosen is not None:
            return Transition(
                result="matched", detail=f"condition {chosen + 1} held", goto=cases[chosen].goto
            )
        otherwise = [case.otherwise for case in step.branch if isinstance(case, BranchOtherwise)]
        if otherwise:
            return Transition(result="otherwise", goto=otherwise[0])
        return Transition(result="no match", detail="no condition held; continuing with the next step")

    # --- waiting and events ---------------------------------------------------------------------

    async def _wait(
        self,
        duration: timedelta,
        satisfied: Callable[[], bool],
        summary: str,
        on_events: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Wait up to `duration`; True when interrupted early (condition met, or an exit event)."""
        deadline = workflow.now() + duration
        while True:
            await self._check_exit_rules()
            if on_events is not None:
                await on_events()
            if self._exit is not None or satisfied():
                return True
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                return False
            if not await self._next_event(remaining, summary):
                return False

    async def _next_event(self, limit: timedelta, summary: str) -> bool:
        """Wait for one more event; False when the limit came first.

        The timer is a `workflow.sleep` so it carries a readable summary in the Temporal UI.
        """
        seen = len(self._events)
        timer = asyncio.ensure_future(workflow.sleep(limit, summary=summary))
        try:
            await workflow.wait_condition(lambda: len(self._events) > seen or timer.done())
        finally:
            if not timer.done():
                timer.cancel()
        return len(self._events) > seen

    async def _check_exit_rules(self) -> None:
        rules = self._journey().exit
        while self._exit is None and self._checked_for_exit < len(self._events):
            event = self._events[self._checked_for_exit]
            self._checked_for_exit += 1
            if event.id == self._entry_event_id:
                continue
            for rule in rules:
                if rule.event == event.type and await self._rule_holds(rule, event):
                    self._exit = (rule.outcome, event)
                    break

    async def _rule_holds(self, rule: ExitRule, event: PatientEvent) -> bool:
        if rule.criteria is None:
            return True
        return await self._first_true("exit", [rule.criteria], event=event) == 0

    async def _matches(self, spec: WaitForSpec, event: PatientEvent) -> bool:
        if event.type != spec.event or event.id in self._consumed:
            return False
        if spec.criteria is None:
            return True
        return await self._first_true(self._current or "wait_for", [spec.criteria], event=event) == 0

    async def _first_true(
        self, step_id: str, conditions: list[str], event: PatientEvent | None = None
    ) -> int | None:
        try:
            result = await workflow.execute_local_activity_method(
                StoreActivities.evaluate_conditions,
                EvaluateConditionsInput(scope=self._scope(event), conditions=conditions),
                **EVALUATE.options(),
            )
        except ACTIVITY_FAILURES as error:
            raise StepFailedError(step_id, failure_reason(error)) from error
        first_true: int | None = result.first_true
        return first_true

    # --- bookkeeping ----------------------------------------------------------------------------

    def _enter(self, step: Step) -> None:
        self._visits[step.id] = self._visits.get(step.id, 0) + 1
        self._step_marks = (self._step_marks[1], len(self._events))
        if step.id != self._current or self._visits[step.id] > 1:
            workflow.upsert_search_attributes([CURRENT_STEP.value_set(step.id)])
        self._current = step.id
        workflow.set_current_details(f"**{step.id}**: {step.describe()}")

    def _record(self, step: Step, transition: Transition) -> None:
        record = StepRecord(
            seq=len(self._history) + 1,
            step=step.id,
            at=workflow.now(),
            result=transition.result,
            detail=transition.detail,
        )
        self._history.append(record)
        self._unprojected.append(record)

    def _needs_projection(self, following: Step) -> bool:
        """Mirror progress before a waiting step, so the database shows where the patient waits; quick
        steps are mirrored together with the next wait or the end."""
        return isinstance(following, (WaitStep, WaitForStep))

    async def _finish(
        self, status: EnrollmentStatus, outcome: str, detail: str | None = None
    ) -> EnrollmentResult:
        self._status, self._outcome, self._current = status, outcome, None
        workflow.upsert_search_attributes([ENROLLMENT_STATUS.value_set(status), CURRENT_STEP.value_unset()])
        workflow.set_current_details(f"**{status}** ({outcome})" + (f": {detail}" if detail else ""))
        if status != "completed" or detail:
            record = StepRecord(
                seq=len(self._history) + 1,
                step=f"<{status}>",
                at=workflow.now(),
                result=outcome,
                detail=detail,
            )
            self._history.append(record)
            self._unprojected.append(record)
        await self._project(status, outcome=outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return EnrollmentResult(status=status, outcome=outcome)

    async def _project(
        self, status: EnrollmentStatus, *, current_step: str | None = None, outcome: str | None = None
    ) -> None:
        progress = ProgressUpdate(
            enrollment_id=self._input_or_fail().enrollment_id,
            status=status,
            current_step=current_step,
            outcome=outcome,
            records=self._unprojected,
        )
        try:
            await workflow.execute_local_activity_method(
                StoreActivities.record_progress, progress, **DB_WRITE.options()
            )
        except ACTIVITY_FAILURES:
            workflow.logger.warning(
                "enrollment projection could not be written; the workflow carries on",
                extra={"enrollment_id": progress.enrollment_id},
            )
            return
        self._unprojected = []

    def _scope(self, event: PatientEvent | None = None) -> ExpressionScope:
        request = self._input_or_fail()
        return ExpressionScope(
            enrollment_id=request.enrollment_id,
            patient_id=request.patient_id,
            trigger=request.trigger,
            event=event or self._last_event,
            context=request.context,
        )

    def _journey(self) -> JourneyDefinition:
        return self._input_or_fail().journey

    def _input_or_fail(self) -> EnrollmentInput:
        assert self._input is not None
        return self._input
