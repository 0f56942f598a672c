"""A journey's dry run against one patient: the path the definition would take for them, without
sending, waiting or writing anything.

The journey's own interpreter (`workflows/interpreter.py`) walks the definition, with `DryRunSteps`
in place of an enrollment's durable steps: branch conditions are judged by the same evaluation as the
`evaluate_conditions` activity over the patient's variables as an enrollment would load them, A/B
splits choose as an enrollment would, a send is composed for the patient as the send activity composes
it (channel, reachability and the rendered text; nothing goes out), `update` steps change the
attributes later steps see (nothing is written), and every other step is recorded as what it would do.
What the dry run cannot know, the user chooses: which awaited events arrive, which surveys are answered
and which calls are picked up (`happens`, step ids); the rest time out, expire or go unanswered. The
entry is judged first: for a FHIR entry, its criteria over the patient's newest resource of that type,
as the trigger would judge them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.store import first_true_condition
from activities.variables import load_variables
from aftercare.compose import TemplateNotFoundError, compose_message
from aftercare.enrollment.fhir_triggers import fhir_entry_holds
from aftercare.fhir.fhirpath import FhirPathError
from aftercare.journey_variables import JourneyVariables, event_view
from aftercare.sms_segments import sms_size
from aftercare.store.attributes import attributes_of
from aftercare.store.resources import load_current, newest_of_type
from aftercare.templating import TemplateRenderError, render
from models.durations import format_iso_duration
from models.journey import (
    CallSpec,
    CallStep,
    JourneyDefinition,
    SendSpec,
    SplitPath,
    Step,
    SurveyStep,
    WaitForStep,
)
from models.temporal import EnrollmentTrigger, ExpressionScope, FhirResourceRef, PatientEvent
from workflows.calls import CallResult
from workflows.interpreter import interpret
from workflows.steps import JourneyEndedError, send_document
from workflows.support import choose_path

MAX_STEPS = 100  # a definition that loops (a wait and a jump back) is stopped here
DRY_RUN_ID = "dry-run"
SHOWN_TEXT = 300  # characters of a composed message shown in the path


@dataclass(frozen=True)
class Happening:
    """Something only the patient decides that a dry run may assume: an awaited event arriving, a survey
    answered, a call picked up, at one step."""

    step_id: str
    label: str
    assumed: bool  # what the form offers checked: calls are taken as answered, the rest as not


def happenings(journey: JourneyDefinition) -> list[Happening]:
    """The choices a dry run of `journey` offers, in step order."""
    choices: list[Happening] = []
    for step in journey.steps:
        choice = _happening(step)
        if choice is not None:
            choices.append(choice)
    return choices


def _happening(step: Step) -> Happening | None:
    if isinstance(step, WaitForStep):
        return Happening(step.id, f"{step.wait_for.event} arrives at {step.id}", False)
    if isinstance(step, SurveyStep):
        return Happening(step.id, f"the patient answers the survey at {step.id}", False)
    if isinstance(step, CallStep):
        return Happening(step.id, f"the patient answers the call at {step.id}", True)
    return None


@dataclass(frozen=True)
class PathStep:
    """One step the journey would take, and what it would do there."""

    step_id: str
    kind: str
    what: str


@dataclass(frozen=True)
class DryRun:
    """The entry's verdict and the path; `stopped` says why the walk ended early (an end, a loop, an
    expression that cannot be evaluated)."""

    entry: str
    enters: bool
    path: list[PathStep]
    outcome: str
    stopped: str | None = None


def _duration(value: timedelta | str) -> str:
    return format_iso_duration(value) if isinstance(value, timedelta) else value


class _Stopped(Exception):
    """The walk cannot go on (a loop, or an expression that cannot be evaluated)."""


@dataclass
class DryRunSteps:
    """The steps of `workflows/step_runner.StepRunner`, recording instead of doing."""

    variables: JourneyVariables
    seed: str
    sessions: async_sessionmaker[AsyncSession]
    happens: frozenset[str] = frozenset()
    path: list[PathStep] = field(default_factory=list)

    def _take(self, step: str | None, kind: str, what: str) -> None:
        if len(self.path) >= MAX_STEPS:
            raise _Stopped(f"stopped after {MAX_STEPS} steps: the journey loops")
        self.path.append(PathStep(step or kind, kind, what))

    def should_continue_as_new(self) -> bool:
        """Never: a dry run has no history."""
        return False

    async def continue_as_new(self, *, position: str | None = None) -> NoReturn:
        """Not reached (`should_continue_as_new` is False)."""
        raise _Stopped("a dry run does not continue as new")

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
        attach: Sequence[str] = (),
    ) -> None:
        """Compose the message as the send activity would, and record it (nothing goes out)."""
        spec = SendSpec.model_validate(
            send_document(template, channel, fallback, body, subject, purpose) | {"urgent": urgent}
        )
        self._take(step, "send", await self._composed(spec, name))

    async def _composed(self, spec: SendSpec, name: str | None) -> str:
        async with self.sessions() as session:
            try:
                message = await compose_message(session, spec, self.variables)
            except (TemplateNotFoundError, TemplateRenderError) as error:
                return f"would fail: {error}"
        text = message.body if len(message.body) <= SHOWN_TEXT else message.body[: SHOWN_TEXT - 1] + "…"
        if message.to is None:
            return f"would not send by {message.channel}: {message.unreachable_reason}"
        size = sms_size(message.body) if message.channel == "sms" else None
        parts = f" ({size.segments} segment{'s' if size.segments != 1 else ''})" if size else ""
        return f"would send by {message.channel}{parts}: {text}"

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
    ) -> None:
        """Record the invitation it would send."""
        self._take(step, "invite", f"would invite the patient to the event {event}")

    async def call(self, spec: CallSpec, *, step: str | None = None, name: str | None = None) -> CallResult:
        """Record the call it would place, answered or not as the user chose."""
        asked = ", ".join(question.id for question in spec.gather) or "no questions"
        answered = (step or "call") in self.happens
        taken = "answered" if answered else "not answered"
        self._take(step, "call", f"would call the patient ({asked}); taken as {taken}")
        return CallResult(status="sent", outcome="answered" if answered else "no_answer", calls=1)

    async def survey(self, step: SurveyStep) -> str | None:
        """Record the survey it would send, answered or expired as the user chose."""
        waits = f"would send the survey {step.survey.questionnaire} and wait for the answers"
        if step.id in self.happens:
            self._take(step.id, "survey", f"{waits}; taken as answered")
            answered = PatientEvent(
                id=DRY_RUN_ID,
                type="survey.completed",
                data={"questionnaire": step.survey.questionnaire},
                occurred_at=datetime.now(UTC),
            )
            self.variables = replace(self.variables, event=event_view(answered))
            return None
        self._take(step.id, "survey", f"{waits}; taken as expired")
        return step.survey.on_expired

    async def wait(
        self, duration: timedelta | str, *, step: str | None = None, name: str | None = None
    ) -> None:
        """Record the wait."""
        self._take(step, "wait", f"would wait {name or _duration(duration)}")

    async def wait_until(self, clock: str, *, step: str | None = None, name: str | None = None) -> None:
        """Record the wait."""
        self._take(step, "wait", f"would wait until {name or clock}")

    async def wait_until_moment(
        self,
        expression: str,
        offset: timedelta = timedelta(0),
        *,
        step: str | None = None,
        name: str | None = None,
    ) -> bool:
        """Record the wait."""
        self._take(step, "wait", f"would wait until {name or expression}")
        return True

    async def wait_business_days(
        self, days: int, *, step: str | None = None, name: str | None = None
    ) -> None:
        """Record the wait."""
        self._take(step, "wait", f"would wait {name or f'{days} business days'}")

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
        """Record the wait; the event arrives when the user chose so, else the wait times out."""
        limit = _duration(timeout) if timeout is not None else f"{timeout_business_days} business days"
        waits = f"would wait for {event} (up to {limit})"
        if (step or "wait_for") not in self.happens:
            self._take(step, "wait_for", f"{waits}; taken as timed out")
            return None
        judged = "; its criteria are not judged" if criteria else ""
        self._take(step, "wait_for", f"{waits}; taken as arrived{judged}")
        arrived = PatientEvent(id=DRY_RUN_ID, type=event, data={}, occurred_at=datetime.now(UTC))
        self.variables = replace(self.variables, event=event_view(arrived))
        return arrived

    async def first_true(
        self, conditions: Sequence[str], *, step: str | None = None, name: str | None = None
    ) -> int | None:
        """Judge the branch's conditions over the patient's variables, as the enrollment would."""
        try:
            chosen = first_true_condition(conditions, self.variables)
        except ApplicationError as error:
            self._take(step, "branch", str(error))
            raise _Stopped(str(error)) from error
        verdict = (
            f"condition {chosen + 1} holds: {conditions[chosen]}"
            if chosen is not None
            else "no condition holds"
        )
        self._take(step, "branch", verdict)
        return chosen

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
    ) -> None:
        """Record the task it would create."""
        self._take(step, "task", f"would create a {priority} task for {queue}: {title}")

    async def update(
        self, values: Mapping[str, Any], *, step: str | None = None, name: str | None = None
    ) -> None:
        """Set the attributes for the rest of the walk as the enrollment would (nothing is written)."""
        names = self.variables.template_variables()
        try:
            rendered = {
                name: render(value, names) if isinstance(value, str) else value
                for name, value in values.items()
            }
        except TemplateRenderError as error:
            self._take(step, "update", f"would fail: {error}")
            raise _Stopped(str(error)) from error
        attributes = self.variables.attributes
        if attributes is None:
            async with self.sessions() as session:
                attributes = await attributes_of(session, self.variables.profile.id)
        self.variables = replace(self.variables, attributes={**attributes, **rendered})
        shown = ", ".join(f"{name} = {rendered[name]!r}" for name in sorted(rendered))
        self._take(step, "update", f"would set {shown}")

    async def fetch(
        self,
        query: str,
        *,
        into: str | None = None,
        limit: int = 50,
        source: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> None:
        """Record the FHIR read it would make."""
        self._take(step, "fetch", f"would read {query} from the FHIR server")

    async def split(
        self,
        paths: Sequence[SplitPath] | Mapping[str, int],
        *,
        step: str | None = None,
        name: str | None = None,
    ) -> str:
        """Choose a path as an enrollment would (by a seed of the patient and step)."""
        arms = (
            [SplitPath(goto=label, weight=weight, name=label) for label, weight in paths.items()]
            if isinstance(paths, Mapping)
            else list(paths)
        )
        chosen = choose_path(arms, f"{self.seed}/{step}/1")
        self._take(step, "split", f"path {chosen.label} (an enrollment's own path may differ)")
        return chosen.label

    async def enroll(
        self,
        journey: str,
        *,
        version: int | None = None,
        context: Mapping[str, Any] | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> None:
        """Record the enrollment it would start."""
        self._take(step, "enroll", f"would enroll the patient in {journey}")

    async def end(
        self, outcome: str = "completed", *, step: str | None = None, name: str | None = None
    ) -> NoReturn:
        """End the walk with the outcome."""
        self._take(step, "end", f"ends: {outcome}")
        raise JourneyEndedError(outcome)


async def _entry(
    session: AsyncSession, journey: JourneyDefinition, patient_id: str
) -> tuple[str, bool, EnrollmentTrigger]:
    """What the entry says for this patient, whether it would let them in, and the trigger to walk with."""
    manual = EnrollmentTrigger(kind="manual")
    entry = journey.entry
    if entry is None:
        return "enrolled by the API or the console only", True, manual
    if entry.event is not None:
        return (
            f"enters on the event {entry.event.type}; its criteria are judged when it arrives",
            True,
            manual,
        )
    if entry.segment is not None:
        return f"enters on joining the segment {entry.segment}", True, manual
    assert entry.fhir is not None
    resource = await newest_of_type(session, patient_id, entry.fhir.resource)
    if resource is None:
        return f"enters on a FHIR {entry.fhir.resource}: the patient has none", False, manual
    ref = FhirResourceRef(
        resource_type=resource.resource_type, resource_id=resource.resource_id, version_id=resource.version_id
    )
    trigger = EnrollmentTrigger(kind="fhir", resource=ref)
    if not entry.fhir.criteria:
        return (
            f"enters on a FHIR {entry.fhir.resource}: {ref.versioned_reference} would start it",
            True,
            trigger,
        )
    patient = await load_current(session, "Patient", patient_id)
    try:
        holds = fhir_entry_holds(entry.fhir.criteria, resource.content, patient)
    except FhirPathError as error:
        return f"the entry criteria could not be evaluated: {error}", False, trigger
    verdict = "hold" if holds else "do not hold"
    return f"the entry criteria {verdict} for {ref.versioned_reference}", holds, trigger


async def dry_run(
    sessions: async_sessionmaker[AsyncSession],
    journey: JourneyDefinition,
    patient_id: str,
    happens: frozenset[str] = frozenset(),
) -> DryRun:
    """The path `journey` would take for the patient, with the events, survey answers and answered calls
    of the steps in `happens` (`PatientNotFound` `ApplicationError` when there is no such patient)."""
    async with sessions() as session:
        entry, enters, trigger = await _entry(session, journey, patient_id)
        scope = ExpressionScope(enrollment_id=DRY_RUN_ID, patient_id=patient_id, trigger=trigger)
        variables = await load_variables(session, scope, journey_key=journey.key)
    steps = DryRunSteps(variables, seed=f"{DRY_RUN_ID}:{patient_id}", sessions=sessions, happens=happens)
    try:
        outcome = await interpret(steps, journey)
    except JourneyEndedError as ended:
        return DryRun(entry, enters, steps.path, ended.outcome)
    except _Stopped as stopped:
        return DryRun(entry, enters, steps.path, "stopped", str(stopped))
    return DryRun(entry, enters, steps.path, outcome)
