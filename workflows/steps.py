"""The step library: everything a journey can do, for definitions and for journeys written in Python.

A definition is interpreted through these methods (`workflows/interpreter.py`); a code journey calls
them directly (`await steps.send(template="welcome")`). Either way each call is one step: it waits
while the enrollment is paused, stops when an exit rule fires, names itself in the Temporal UI,
records its result in the history, and keeps its side effects in activities.

This module runs inside workflows: no clock, no randomness, no I/O but through `workflow.*`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.enrollments import EnrollmentActivities
from activities.events import EventActivities
from activities.fhir import FhirActivities
from activities.messaging.send import MessagingActivities
from activities.options import DB_WRITE, EVALUATE, FHIR_READ, SEND_MESSAGE, SEND_MESSAGE_FAST
from activities.store import StoreActivities
from activities.tasks import TaskActivities
from aftercare.facilities.calendar import add_business_days
from models.durations import format_iso_duration, parse_iso_duration
from models.event_temporal import InviteLink, InviteLinkInput
from models.journey import (
    CallSpec,
    EnrollSpec,
    ExitRule,
    FetchSpec,
    InviteSpec,
    JourneyDefinition,
    SendSpec,
    SendStep,
    SplitPath,
    SurveyStep,
    TaskSpec,
    UpdateSpec,
    describe_send,
    fetched_name,
)
from models.search_attributes import CURRENT_STEP, ENROLLMENT_STATUS
from models.temporal import (
    ClosingProjection,
    CreateTaskInput,
    CreateTaskResult,
    DeliverMessageInput,
    EnrollmentInput,
    EnrollmentState,
    EnrollmentStatus,
    EvaluateConditionsInput,
    ExpressionScope,
    FacilityCalendarInput,
    FetchInput,
    FetchResult,
    NextLocalTimeInput,
    PatientEvent,
    ProgressUpdate,
    ResolveMomentInput,
    ResumeState,
    SendMessageInput,
    SendMessageResult,
    StartEnrollmentInput,
    StartEnrollmentResult,
    StepCall,
    StepRecord,
    UpdateAttributesInput,
    WriteBackInput,
)
from models.voice import CallScript
from models.workflow_names import ENCOUNTER_CANCELLED_EVENT, FHIR_WRITE_BACK_PREFIX, FHIR_WRITE_BACK_WORKFLOW
from workflows.calls import CallResult, place_call
from workflows.support import ACTIVITY_FAILURES, StepFailedError, choose_path, failure_reason, is_permanent
from workflows.survey_step import run_survey

T = TypeVar("T")

HISTORY_IN_MEMORY = 50
EVENT_IDS_REMEMBERED = 500
CONTINUE_AS_NEW_AFTER_EVENTS = 2000
WAITING_KINDS = frozenset({"wait", "wait_for", "pause"})
WRITE_BACK_PATCH = "fhir-write-back"
PLANNED_SENDS_PATCH = "fhir-planned-sends"


class JourneyExitedError(Exception):
    """An exit rule fired: the journey stops with its outcome."""

    def __init__(self, outcome: str, event: PatientEvent) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.event = event


class JourneyEndedError(Exception):
    """An `end` step: the journey finishes with its outcome."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class JourneySteps:
    """One enrollment's steps. Created by the enrollment workflow; handed to code journeys."""

    def __init__(self, request: EnrollmentInput) -> None:
        resume = request.resume or ResumeState()
        self.request = request
        self.status: EnrollmentStatus = "running"
        self.outcome: str | None = None
        self.current: str | None = resume.position or (
            request.journey.steps[0].id if request.journey.steps else None
        )
        self.paused = resume.paused
        self.history: list[StepRecord] = []
        self._recorded = resume.recorded_steps
        self._unprojected: list[StepRecord] = []
        self._projected_seq: int | None = None  # a step record its send projected itself
        self._visits = dict(resume.visits)
        self._events: list[PatientEvent] = list(resume.events)
        self._seen_ids: list[str] = list(resume.seen_event_ids)
        self._seen = set(self._seen_ids)
        self._consumed = set(resume.consumed_event_ids)
        self._checked_for_exit = len(self._events)
        self._window = (resume.window_start, resume.window_start)
        self._exit: JourneyExitedError | None = None
        self._entry_event_id = request.trigger.event.id if request.trigger.event else None
        self.last_event = resume.last_event
        self.checkpoint_state: dict[str, Any] = dict(resume.checkpoint or {})
        self._runs = resume.runs
        # What the projection row already says: allocation wrote (running, first step, no outcome,
        # not paused); after continue-as-new it is not assumed.
        self._projected: tuple[str, str | None, str | None, bool] | None = (
            ("running", self.current, None, False) if request.resume is None else None
        )
        if request.trigger.event is not None and request.resume is None:
            self.receive(request.trigger.event)
            self._consumed.add(request.trigger.event.id)
            self._checked_for_exit = len(self._events)

    # --- facts -----------------------------------------------------------------------------------

    @property
    def journey(self) -> JourneyDefinition:
        """The definition (or, for code journeys, the registration) the enrollment runs."""
        return self.request.journey

    @property
    def enrollment_id(self) -> str:
        """This enrollment."""
        return self.request.enrollment_id

    @property
    def patient_id(self) -> str:
        """The patient."""
        return self.request.patient_id

    @property
    def context(self) -> dict[str, Any]:
        """The context given at enrollment."""
        return self.request.context

    # --- events, pause, state ------------------------------------------------------------------------

    def receive(self, event: PatientEvent) -> None:
        """Take a patient event; repeats of an event id are ignored."""
        if event.id in self._seen:
            return
        self._seen.add(event.id)
        self._seen_ids.append(event.id)
        self._events.append(event)

    def state(self) -> EnrollmentState:
        """Status, position, pause and the latest steps."""
        return EnrollmentState(
            status=self.status,
            current_step=self.current,
            outcome=self.outcome,
            paused=self.paused,
            history=self.history[-HISTORY_IN_MEMORY:],
        )

    async def set_paused(self, paused: bool, reason: str | None) -> EnrollmentState:
        """Hold before the next step, or let the journey go on; mirrored in the projection and the UI."""
        self.paused = paused
        workflow.upsert_search_attributes([ENROLLMENT_STATUS.value_set("paused" if paused else "running")])
        if paused:
            workflow.set_current_details(
                "**Paused** before the next step" + (f": {reason}" if reason else "")
            )
        await self.project()
        return self.state()

    # --- the steps ----------------------------------------------------------------------------

    async def send(
        self,
        template: str | None = None,
        *,
        channel: str | None = None,
        fallback: Sequence[str] | None = None,
        body: str | None = None,
        subject: str | None = None,
        step: str | None = None,
        name: str | None = None,
        purpose: str | None = None,
        urgent: bool = False,
        script: CallScript | None = None,
        variables: dict[str, Any] | None = None,
        attach: Sequence[str] = (),
    ) -> SendMessageResult:
        """Send a message from a template, or an inline body on a channel; at most once (a `voice`
        message is a call, saying `script` when given).

        `channel="best"` picks the patient's preferred reachable channel, trying `fallback` in order.
        The guardrails decide first: a send deferred (quiet hours, a frequency cap) sleeps durably until
        the moment they give and asks again, under the same idempotency key. `variables` are added to
        what the message sees (beside `patient`, `trigger`, `event`, `context`, which they never hide);
        `attach` names files an email carries for the registration of the event last heard of
        (`event_invite`, `check_in_qr`).
        """
        spec = SendSpec.model_validate(
            send_document(template, channel, fallback, body, subject, purpose)
            | {"urgent": urgent, "attach": list(attach)}
        )
        label = name or f"Sending {describe_send(spec)}"

        async def run(call: StepCall) -> tuple[SendMessageResult, str, str | None]:
            planned: str | None = None
            while True:
                result = await attempt(call)
                if result.status != "deferred" or result.defer_until is None:
                    await self._write_back(result, planned)
                    return result, result.status, result.reason
                summary = f"Deferred by {result.rule} until {_when(result.defer_until)}"
                workflow.set_current_details(f"**{call.step_id}**: {summary}")
                planned = await self._write_back_planned(call, result) or planned
                try:
                    await self._wait_until(result.defer_until, summary)
                except (asyncio.CancelledError, JourneyExitedError):
                    if planned is not None:  # called off while it waited: the request is revoked
                        await self._start_write_back(
                            WriteBackInput(planned_key=planned, revoked=True), f"planned-{planned}-revoked"
                        )
                    raise

        async def attempt(call: StepCall) -> SendMessageResult:
            if variables:
                scope = call.scope.model_copy(update={"variables": variables})
                call = call.model_copy(update={"scope": scope})
            request = SendMessageInput(
                call=call,
                send=spec,
                due_at=workflow.now(),
                purpose=self.journey.purpose,
                over_cap=self.journey.over_cap,
                script=script,
                closing=self._closing(call.step_id),
            )
            try:
                result: SendMessageResult = await workflow.execute_local_activity_method(
                    MessagingActivities.send_message, request, summary=label, **SEND_MESSAGE_FAST.options()
                )
            except ACTIVITY_FAILURES as fast_failure:
                if is_permanent(fast_failure):
                    raise StepFailedError(call.step_id, failure_reason(fast_failure)) from fast_failure
                try:
                    result = await workflow.execute_activity_method(
                        MessagingActivities.send_message, request, summary=label, **SEND_MESSAGE.options()
                    )
                except ACTIVITY_FAILURES as error:
                    raise StepFailedError(call.step_id, failure_reason(error)) from error
            if result.deliver_queue is not None and result.message_id is not None:
                result = await self._deliver_rate_limited(call, result.message_id, result.deliver_queue)
            if result.projected and request.closing is not None:
                self._closed(request.closing)
            return result

        return await self._step(step or "send", "send", label, run)

    async def call(self, spec: CallSpec, *, step: str | None = None, name: str | None = None) -> CallResult:
        """Call the patient with a script (see `workflows/calls.py`); answers arrive as `voice.*` events."""
        return await place_call(self, spec, step=step or "call", name=name)

    async def survey(self, step: SurveyStep) -> str | None:
        """Send a questionnaire's link and wait for the answers (see `workflows/survey_step.py`); the
        step to go to when it expired unanswered (`on_expired`), else None."""
        return await run_survey(self, step)

    async def invite(
        self,
        event: str,
        *,
        valid_days: int = 14,
        template: str | None = None,
        channel: str | None = None,
        fallback: Sequence[str] | None = None,
        body: str | None = None,
        subject: str | None = None,
        step: str | None = None,
        name: str | None = None,
        purpose: str | None = None,
    ) -> SendMessageResult:
        """Invite the patient to a published event: a message with their self-service link (at most
        once, like any send). Without a template or body, Aftercare's own words on the best channel."""
        spec = InviteSpec.model_validate(
            send_document(template, channel, fallback, body, subject, purpose)
            | {"event": event, "valid_days": valid_days}
        )
        step_id = step or f"invite:{event}"
        link: InviteLink = await self._activity(
            step_id,
            EventActivities.event_invite_link,
            InviteLinkInput(event_key=event, patient_id=self.patient_id, valid_days=valid_days),
        )
        sending = spec.sending()
        return await self.send(
            sending.template,
            channel=sending.channel,
            fallback=sending.fallback,
            body=sending.body,
            subject=sending.subject,
            step=step_id,
            name=name or f"Inviting to {link.title}",
            purpose=sending.purpose,
            variables={"invite": link.model_dump(mode="json")},
            attach=sending.attach,
        )

    async def _write_back(self, result: SendMessageResult, planned: str | None = None) -> None:
        """Hand the message to its own `FhirWriteBack` workflow, which outlives the journey if need be:
        the journey goes on at once, and the write is retried there, never here. A message that was
        planned first also settles its CommunicationRequest (`completed`, or `revoked` when held back)."""
        if result.write_back and result.message_id is not None:
            message = WriteBackInput(message_id=result.message_id)
            await self._start_write_back(message, f"message-{result.message_id}")
            if planned is not None:
                await self._start_write_back(
                    WriteBackInput(planned_key=planned), f"planned-{planned}-settled"
                )

    async def _write_back_planned(self, call: StepCall, result: SendMessageResult) -> str | None:
        """A send deferred to a known moment is a planned send: its CommunicationRequest (`active`, due
        then) is written while the journey waits. Returns the planned send's key."""
        if not result.write_back or result.defer_until is None or not workflow.patched(PLANNED_SENDS_PATCH):
            return None
        key = call.idempotency_key
        due = result.defer_until.strftime("%Y%m%dT%H%M%S")
        await self._start_write_back(WriteBackInput(planned_key=key), f"planned-{key}-{due}")
        return key

    async def _start_write_back(self, request: WriteBackInput, name: str) -> None:
        if not workflow.patched(WRITE_BACK_PATCH):
            return
        # Already started: a retried step, or the same message sent again; it is written once.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                FHIR_WRITE_BACK_WORKFLOW,
                request,
                id=f"{FHIR_WRITE_BACK_PREFIX}{name}",
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary="Writing outreach to the FHIR source (a Communication or a Task)",
            )

    async def _deliver_rate_limited(self, call: StepCall, message_id: str, queue: str) -> SendMessageResult:
        """Hand a recorded message to its provider's rate-limited task queue and wait for the outcome."""
        summary = "Waiting for the provider's rate limit, then sending"
        workflow.set_current_details(f"**{call.step_id}**: {summary}")
        try:
            result: SendMessageResult = await workflow.execute_activity_method(
                MessagingActivities.deliver_message,
                DeliverMessageInput(message_id=message_id),
                task_queue=queue,
                summary=summary,
                **SEND_MESSAGE.options(),
            )
        except ACTIVITY_FAILURES as error:
            raise StepFailedError(call.step_id, failure_reason(error)) from error
        return result

    async def wait(
        self, duration: timedelta | str, *, step: str | None = None, name: str | None = None
    ) -> None:
        """Wait for a duration (`timedelta` or ISO-8601 such as `P2D`)."""
        length = duration if isinstance(duration, timedelta) else parse_iso_duration(duration)
        until = workflow.now() + length
        label = name or f"Waiting {format_iso_duration(length)}, until {_when(until)}"

        async def run(call: StepCall) -> tuple[None, str, str | None]:
            await self._wait_until(until, label)
            return None, "waited", None

        await self._step(step or "wait", "wait", label, run)

    async def wait_until(self, clock: str, *, step: str | None = None, name: str | None = None) -> None:
        """Wait until the patient's clock next shows `clock` (HH:MM; the hospital's zone if unknown)."""

        async def run(call: StepCall) -> tuple[None, str, str | None]:
            target = await self._activity(
                call.step_id,
                StoreActivities.next_local_time,
                NextLocalTimeInput(patient_id=self.patient_id, time=clock, after=workflow.now()),
            )
            label = name or f"Waiting until {clock} {target.timezone} ({_when(target.at)})"
            workflow.set_current_details(f"**{call.step_id}**: {label}")
            await self._wait_until(target.at, label)
            return None, "waited", None

        await self._step(
            step or "wait", "wait", name or f"Waiting until {clock} in the patient's time zone", run
        )

    async def wait_business_days(
        self, days: int, *, step: str | None = None, name: str | None = None
    ) -> None:
        """Wait `days` business days on the calendar of the patient's facility (weekends and its
        holidays skipped), to the same time of day. The calendar is read by an activity, as data."""

        async def run(call: StepCall) -> tuple[None, str, str | None]:
            calendar = await self._activity(
                call.step_id,
                StoreActivities.facility_calendar,
                FacilityCalendarInput(patient_id=self.patient_id),
            )
            until = add_business_days(workflow.now(), days, calendar.timezone, calendar.holidays)
            where = f"{calendar.facility}'s" if calendar.facility else "the"
            label = name or f"Waiting {days} business days on {where} calendar, until {_when(until)}"
            workflow.set_current_details(f"**{call.step_id}**: {label}")
            await self._wait_until(until, label)
            return None, "waited", None

        await self._step(step or "wait", "wait", name or f"Waiting {days} business days", run)

    async def wait_until_moment(
        self,
        expression: str,
        offset: timedelta = timedelta(0),
        *,
        step: str | None = None,
        name: str | None = None,
    ) -> bool:
        """Wait until a moment taken from the data (a FHIRPath dateTime such as `%trigger.start`) plus an
        offset; False (without waiting) when that moment has passed or cannot be read."""

        async def run(call: StepCall) -> tuple[bool, str, str | None]:
            moment = await self._activity(
                call.step_id,
                StoreActivities.resolve_moment,
                ResolveMomentInput(
                    scope=self._scope(), expression=expression, offset_seconds=offset.total_seconds()
                ),
            )
            if moment.at is None:
                return False, "skipped", moment.reason
            if moment.at <= workflow.now():
                return False, "passed", f"{_when(moment.at)} has passed"
            label = name or f"Waiting until {_when(moment.at)}"
            workflow.set_current_details(f"**{call.step_id}**: {label}")
            await self._wait_until(moment.at, label)
            return True, "waited", None

        return await self._step(step or "wait", "wait", name or f"Waiting until {expression}", run)

    async def wait_for(
        self,
        event: str,
        *,
        timeout: timedelta | str | None = None,  # noqa: ASYNC109 (a journey's deadline)
        timeout_business_days: int | None = None,
        criteria: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> PatientEvent | None:
        """Wait for a patient event (arrived since the previous step began, or later); None on timeout.
        The timeout is a duration, or `timeout_business_days` on the calendar of the patient's facility
        (read by an activity when the step begins, as `wait_business_days` reads it)."""
        if (timeout is None) == (timeout_business_days is None):
            raise ValueError("wait_for needs exactly one of timeout and timeout_business_days")
        started = workflow.now()
        until = started
        if timeout is not None:
            until = started + (timeout if isinstance(timeout, timedelta) else parse_iso_duration(timeout))
        label = name or f"Waiting for {event} until {_when(until)}"
        if timeout_business_days is not None:
            label = name or f"Waiting for {event} for {timeout_business_days} business days"

        async def run(call: StepCall) -> tuple[PatientEvent | None, str, str | None]:
            nonlocal until
            if timeout_business_days is not None:
                calendar = await self._activity(
                    call.step_id,
                    StoreActivities.facility_calendar,
                    FacilityCalendarInput(patient_id=self.patient_id),
                )
                until = add_business_days(
                    started, timeout_business_days, calendar.timezone, calendar.holidays
                )
                workflow.set_current_details(f"**{call.step_id}**: Waiting for {event} until {_when(until)}")
            matched = await self._await_event(event, criteria, call.step_id, until, label)
            if matched is None:
                return None, "timeout", f"no {event} by {_when(until)}"
            return matched, "event", f"received {matched.type}"

        return await self._step(step or f"wait_for:{event}", "wait_for", label, run)

    async def watch(
        self, matches: Callable[[PatientEvent], bool], until: datetime, summary: str
    ) -> PatientEvent | None:
        """The first event since the latest step began that `matches`, waiting for it until `until`
        (None then). The event is not consumed: a later `wait_for` still receives it."""
        position = self._window[1]
        while True:
            await self._check_exits()
            found = next((event for event in self._events[position:] if matches(event)), None)
            if found is not None:
                return found
            position = len(self._events)
            remaining = until - workflow.now()
            if remaining <= timedelta(0) or not await self._next_event(remaining, summary):
                return None

    async def first_true(
        self, conditions: Sequence[str], *, step: str | None = None, name: str | None = None
    ) -> int | None:
        """Index of the first FHIRPath condition that holds (over `%patient`, `%trigger`, `%event`,
        `%context`), or None."""

        async def run(call: StepCall) -> tuple[int | None, str, str | None]:
            chosen = await self._evaluate(call.step_id, list(conditions))
            if chosen is None:
                return None, "no match", None
            return chosen, "matched", f"condition {chosen + 1} held"

        return await self._step(step or "branch", "branch", name or "Choosing a path", run)

    async def task(
        self,
        queue: str,
        title: str,
        *,
        description: str | None = None,
        due: timedelta | str | None = None,
        due_business_days: int | None = None,
        priority: str = "normal",
        step: str | None = None,
        name: str | None = None,
    ) -> CreateTaskResult:
        """Create a task for a care-team queue; completing it delivers a `task.completed` event."""
        spec = TaskSpec.model_validate(
            {
                "queue": queue,
                "title": title,
                "description": description,
                "priority": priority,
                "due": due if not isinstance(due, timedelta) else format_iso_duration(due),
                "due_business_days": due_business_days,
            }
        )

        async def run(call: StepCall) -> tuple[CreateTaskResult, str, str | None]:
            created = await self._activity(
                call.step_id, TaskActivities.create_task, CreateTaskInput(call=call, task=spec)
            )
            if created.write_back:
                await self._start_write_back(
                    WriteBackInput(task_id=created.task_id), f"task-{created.task_id}"
                )
            return created, "created", f"task {created.task_id} in {created.queue}"

        return await self._step(step or "task", "task", name or f"Creating a task for {queue}", run)

    async def update(
        self, values: Mapping[str, Any], *, step: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """Set patient attributes (string values are rendered like messages)."""
        spec = UpdateSpec.model_validate({"set": dict(values)})

        async def run(call: StepCall) -> tuple[dict[str, Any], str, str | None]:
            written = await self._activity(
                call.step_id, StoreActivities.update_attributes, UpdateAttributesInput(call=call, update=spec)
            )
            return written.values, "updated", ", ".join(sorted(written.values))

        return await self._step(
            step or "update", "update", name or f"Updating {', '.join(sorted(values))}", run
        )

    async def fetch(
        self,
        query: str,
        *,
        into: str | None = None,
        limit: int = 50,
        source: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> FetchResult:
        """Read FHIR resources (`Observation?patient={{ patient.id }}&code=...&_sort=-date&_count=1`)
        for later branches (`%fetched.<into>`) and templates (`fetched.<into>`); `into` defaults to the
        step id."""
        step_id = step or "fetch"
        spec = FetchSpec.model_validate({"query": query, "as": into, "limit": limit, "source": source})
        label = name or f"Reading {query.split('?')[0]} from the FHIR server"

        async def run(call: StepCall) -> tuple[FetchResult, str, str | None]:
            try:
                result: FetchResult = await workflow.execute_activity_method(
                    FhirActivities.fetch_resources,
                    FetchInput(call=call, fetch=spec, name=spec.into or fetched_name(call.step_id)),
                    summary=label,
                    **FHIR_READ.options(),
                )
            except ACTIVITY_FAILURES as error:
                raise StepFailedError(call.step_id, failure_reason(error)) from error
            return result, "fetched", f"{result.count} resource{'s' if result.count != 1 else ''}"

        return await self._step(step_id, "fetch", label, run)

    async def split(
        self,
        paths: Sequence[SplitPath] | Mapping[str, int],
        *,
        step: str | None = None,
        name: str | None = None,
    ) -> str:
        """Choose one weighted path (A/B), the same one every time for this enrollment; returns its label."""
        arms = (
            [SplitPath(goto=label, weight=weight, name=label) for label, weight in paths.items()]
            if isinstance(paths, Mapping)
            else list(paths)
        )

        async def run(call: StepCall) -> tuple[str, str, str | None]:
            chosen = choose_path(arms, f"{self.enrollment_id}/{call.step_id}/{call.visit}")
            return chosen.label, f"path {chosen.label}", None

        return await self._step(step or "split", "split", name or "Choosing an A/B path", run)

    async def enroll(
        self,
        journey: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> StartEnrollmentResult:
        """Enroll the patient in another journey (its re-entry rule applies)."""
        spec = EnrollSpec(journey=journey, version=version, context=dict(context or {}))

        async def run(call: StepCall) -> tuple[StartEnrollmentResult, str, str | None]:
            started = await self._activity(
                call.step_id,
                EnrollmentActivities.start_enrollment,
                StartEnrollmentInput(call=call, enroll=spec),
            )
            if started.created:
                return started, "enrolled", f"enrollment {started.enrollment_id}"
            return started, "not enrolled", started.reason

        return await self._step(step or "enroll", "enroll", name or f"Enrolling in {journey}", run)

    async def end(
        self, outcome: str = "completed", *, step: str | None = None, name: str | None = None
    ) -> NoReturn:
        """Finish the enrollment with an outcome."""

        async def run(call: StepCall) -> tuple[None, str, str | None]:
            return None, "ended", outcome

        await self._step(step or "end", "end", name or f"Ending ({outcome})", run)
        raise JourneyEndedError(outcome)

    def should_continue_as_new(self) -> bool:
        """True when the history is long enough to start afresh (at a step boundary)."""
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > CONTINUE_AS_NEW_AFTER_EVENTS
        )

    async def checkpoint(self, state: Mapping[str, Any]) -> None:
        """For code journeys: a place to resume from. When the history is long the run continues as new
        here and `run` starts again with `steps.checkpoint_state` set to `state`."""
        self.checkpoint_state = dict(state)
        if self.should_continue_as_new():
            await self.continue_as_new(checkpoint=dict(state))

    async def continue_as_new(
        self, *, position: str | None = None, checkpoint: dict[str, Any] | None = None
    ) -> NoReturn:
        """Start a fresh run of this enrollment with the bookkeeping that must survive."""
        await self.project()
        await workflow.wait_condition(workflow.all_handlers_finished)
        window_events = self._events[self._window[1] :]
        pending = [event for event in window_events if event.id not in self._consumed]
        resume = ResumeState(
            position=position,
            checkpoint=checkpoint,
            visits=self._visits,
            events=pending,
            window_start=0,
            seen_event_ids=self._seen_ids[-EVENT_IDS_REMEMBERED:],
            consumed_event_ids=[
                event_id for event_id in self._seen_ids[-EVENT_IDS_REMEMBERED:] if event_id in self._consumed
            ],
            last_event=self.last_event,
            recorded_steps=self._recorded,
            paused=self.paused,
            runs=self._runs + 1,
        )
        workflow.continue_as_new(self.request.model_copy(update={"resume": resume}))

    # --- the machinery ------------------------------------------------------------------------

    async def _step(
        self,
        step_id: str,
        kind: str,
        label: str,
        run: Callable[[StepCall], Awaitable[tuple[T, str, str | None]]],
    ) -> T:
        await self._hold_while_paused(step_id)
        await self._check_exits()
        call = self._enter(step_id, kind, label)
        if kind in WAITING_KINDS:
            await self.project(current_step=step_id)
        value, result, detail = await run(call)
        self._record(step_id, result, detail)
        return value

    def _enter(self, step_id: str, kind: str, label: str) -> StepCall:
        self._visits[step_id] = self._visits.get(step_id, 0) + 1
        self._window = (self._window[1], len(self._events))
        if step_id != self.current or self._visits[step_id] > 1:
            workflow.upsert_search_attributes([CURRENT_STEP.value_set(step_id)])
        self.current = step_id
        workflow.set_current_details(f"**{step_id}**: {label}")
        return StepCall(
            journey_key=self.journey.key,
            journey_version=self.journey.version,
            step_id=step_id,
            visit=self._visits[step_id],
            scope=self._scope(),
        )

    def _record(self, step_id: str, result: str, detail: str | None) -> None:
        self._recorded += 1
        record = StepRecord(seq=self._recorded, step=step_id, at=workflow.now(), result=result, detail=detail)
        self.history.append(record)
        del self.history[:-HISTORY_IN_MEMORY]
        if record.seq != self._projected_seq:
            self._unprojected.append(record)

    async def finish(self, status: EnrollmentStatus, outcome: str, detail: str | None = None) -> None:
        """Record how the enrollment ended, in the projection, the search attributes and the UI."""
        self.status, self.outcome, self.current = status, outcome, None
        workflow.upsert_search_attributes([ENROLLMENT_STATUS.value_set(status), CURRENT_STEP.value_unset()])
        workflow.set_current_details(f"**{status}** ({outcome})" + (f": {detail}" if detail else ""))
        if status != "completed" or detail:
            self._record(f"<{status}>", outcome, detail)
        await self.project()
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _closing(self, step_id: str) -> ClosingProjection | None:
        """For the last step of a definition, a send the journey completes after: the projection it
        ends with, for the send to write with its message (the step's own record is the send's)."""
        steps = self.journey.steps
        last = steps[-1] if steps and not self.journey.code else None
        if not isinstance(last, SendStep) or last.id != step_id or last.goto is not None:
            return None
        progress = ProgressUpdate(
            enrollment_id=self.enrollment_id,
            status="completed",
            outcome="completed",
            paused=self.paused,
            records=self._unprojected,
        )
        return ClosingProjection(progress=progress, seq=self._recorded + 1)

    def _closed(self, closing: ClosingProjection) -> None:
        """The send wrote the closing projection: what it holds is projected, the step it recorded as
        well, and the journey's completion writes nothing more unless something changed meanwhile."""
        written = {record.seq for record in closing.progress.records}
        self._unprojected = [record for record in self._unprojected if record.seq not in written]
        self._projected_seq = closing.seq
        progress = closing.progress
        self._projected = (progress.status, progress.current_step, progress.outcome, progress.paused)

    async def project(self, current_step: str | None = None) -> None:
        """Mirror status, position and the steps recorded since the last time into the database (nothing
        to write when none of it changed)."""
        progress = ProgressUpdate(
            enrollment_id=self.enrollment_id,
            status=self.status,
            current_step=current_step or (self.current if self.status == "running" else None),
            outcome=self.outcome,
            paused=self.paused,
            records=self._unprojected,
        )
        state = (progress.status, progress.current_step, progress.outcome, progress.paused)
        if not progress.records and state == self._projected:
            return
        try:
            await workflow.execute_local_activity_method(
                StoreActivities.record_progress, progress, **DB_WRITE.options()
            )
        except ACTIVITY_FAILURES:
            workflow.logger.warning(
                "enrollment projection could not be written; the workflow carries on",
                extra={"enrollment_id": self.enrollment_id},
            )
            return
        self._unprojected = []
        self._projected = state

    async def _hold_while_paused(self, step_id: str) -> None:
        if not self.paused:
            return
        workflow.set_current_details(f"**Paused** before **{step_id}**")
        await self.project(current_step=step_id)
        while self.paused:
            await self._check_exits()
            await self._resumed_or_event()

    async def _resumed_or_event(self) -> None:
        seen = len(self._events)
        await workflow.wait_condition(lambda: not self.paused or len(self._events) > seen)

    async def _check_exits(self) -> None:
        if self._exit is None:
            rules = self.journey.exit
            while self._exit is None and self._checked_for_exit < len(self._events):
                event = self._events[self._checked_for_exit]
                self._checked_for_exit += 1
                if event.id == self._entry_event_id:
                    continue
                if event.type == ENCOUNTER_CANCELLED_EVENT:
                    self._exit = JourneyExitedError(
                        str(event.data.get("outcome", "encounter_cancelled")), event
                    )
                    break
                for rule in rules:
                    if rule.event == event.type and await self._rule_holds(rule, event):
                        self._exit = JourneyExitedError(rule.outcome, event)
                        break
        if self._exit is not None:
            raise self._exit

    async def _rule_holds(self, rule: ExitRule, event: PatientEvent) -> bool:
        if rule.criteria is None:
            return True
        return await self._evaluate("exit", [rule.criteria], event=event) == 0

    async def _wait_until(self, until: datetime, summary: str) -> None:
        """Sleep until `until`, checking exit rules whenever an event arrives."""
        while True:
            await self._check_exits()
            remaining = until - workflow.now()
            if remaining <= timedelta(0):
                return
            if not await self._next_event(remaining, summary):
                return

    async def _await_event(
        self, event_type: str, criteria: str | None, step_id: str, until: datetime, summary: str
    ) -> PatientEvent | None:
        position = self._window[0]
        while True:
            await self._check_exits()
            while position < len(self._events):
                event = self._events[position]
                position += 1
                if await self._matches(event_type, criteria, step_id, event):
                    self._consumed.add(event.id)
                    self.last_event = event
                    return event
            remaining = until - workflow.now()
            if remaining <= timedelta(0) or not await self._next_event(remaining, summary):
                return None

    async def _matches(
        self, event_type: str, criteria: str | None, step_id: str, event: PatientEvent
    ) -> bool:
        if event.type != event_type or event.id in self._consumed or event.id == self._entry_event_id:
            return False
        if criteria is None:
            return True
        return await self._evaluate(step_id, [criteria], event=event) == 0

    async def _next_event(self, limit: timedelta, summary: str) -> bool:
        """Wait for one more event; False when the limit came first. The timer is a `workflow.sleep`
        so it carries a readable summary in the Temporal UI."""
        seen = len(self._events)
        timer = asyncio.ensure_future(workflow.sleep(limit, summary=summary))
        try:
            await workflow.wait_condition(lambda: len(self._events) > seen or timer.done())
        finally:
            if not timer.done():
                timer.cancel()
        return len(self._events) > seen

    async def _evaluate(
        self, step_id: str, conditions: list[str], event: PatientEvent | None = None
    ) -> int | None:
        result = await self._activity(
            step_id,
            StoreActivities.evaluate_conditions,
            EvaluateConditionsInput(scope=self._scope(event), conditions=conditions),
        )
        first_true: int | None = result.first_true
        return first_true

    async def _activity(self, step_id: str, method: Callable[..., Awaitable[T]], argument: Any) -> T:
        """A short activity run locally; its permanent failure fails the step."""
        try:
            result: T = await workflow.execute_local_activity_method(method, argument, **EVALUATE.options())
        except ACTIVITY_FAILURES as error:
            raise StepFailedError(step_id, failure_reason(error)) from error
        return result

    def _scope(self, event: PatientEvent | None = None) -> ExpressionScope:
        return ExpressionScope(
            enrollment_id=self.enrollment_id,
            patient_id=self.patient_id,
            trigger=self.request.trigger,
            event=event or self.last_event,
            context=self.context,
        )


def send_document(
    template: str | None,
    channel: str | None,
    fallback: Sequence[str] | None,
    body: str | None,
    subject: str | None,
    purpose: str | None,
) -> dict[str, Any]:
    """A send's arguments as the document its spec validates."""
    return {
        "template": template,
        "channel": channel,
        "fallback": list(fallback) if fallback is not None else None,
        "body": body,
        "subject": subject,
        "purpose": purpose,
    }


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def unexpected_step(step: object) -> NoReturn:
    """A step type the interpreter does not know (a worker older than the definition)."""
    raise ApplicationError(f"unknown step kind {type(step).__name__}", non_retryable=True)
