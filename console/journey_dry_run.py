"""A journey's dry run against one patient: the path the definition would take for them, without
sending, waiting or writing anything.

The journey's own interpreter (`workflows/interpreter.py`) walks the definition, with `DryRunSteps`
in place of an enrollment's durable steps: branch conditions are judged by the same evaluation as the
`evaluate_conditions` activity over the patient's variables as an enrollment would load them, A/B
splits choose as an enrollment would, and every other step is recorded as what it would do. A
`wait_for` takes its timeout (the dry run does not wait for events), and `update` steps are not
applied. The entry is judged first: for a FHIR entry, its criteria over the patient's newest resource
of that type, as the trigger would judge them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.store import first_true_condition
from activities.variables import load_variables
from aftercare.enrollment.fhir_triggers import fhir_entry_holds
from aftercare.fhir.fhirpath import FhirPathError
from aftercare.journey_variables import JourneyVariables
from aftercare.store.resources import load_current, newest_of_type
from models.durations import format_iso_duration
from models.journey import CallSpec, JourneyDefinition, SplitPath, SurveyStep
from models.temporal import EnrollmentTrigger, ExpressionScope, FhirResourceRef, PatientEvent
from workflows.calls import CallResult
from workflows.interpreter import interpret
from workflows.steps import JourneyEndedError
from workflows.support import choose_path

MAX_STEPS = 100  # a definition that loops (a wait and a jump back) is stopped here
DRY_RUN_ID = "dry-run"


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
        """Record the message it would send."""
        self._take(step, "send", f"would send: {name}")

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
        """Record the call it would place; the dry run takes it as answered."""
        asked = ", ".join(question.id for question in spec.gather) or "no questions"
        self._take(step, "call", f"would call the patient ({asked}); the dry run takes it as answered")
        return CallResult(status="sent", outcome="answered", calls=1)

    async def survey(self, step: SurveyStep) -> str | None:
        """Record the survey it would send; the dry run takes it as unanswered."""
        waits = f"would send the survey {step.survey.questionnaire} and wait for the answers"
        self._take(step.id, "survey", f"{waits}; the dry run takes the expiry")
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
        timeout: timedelta | str,  # noqa: ASYNC109 (a journey's deadline, not a cancellation timeout)
        criteria: str | None = None,
        step: str | None = None,
        name: str | None = None,
    ) -> PatientEvent | None:
        """Record the wait; the dry run takes the timeout."""
        waits = f"would wait for {event} (up to {_duration(timeout)})"
        self._take(step, "wait_for", f"{waits}; the dry run takes the timeout")
        return None

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
        """Record the attributes it would set (not applied)."""
        self._take(step, "update", f"would set {', '.join(sorted(values))} (not applied in a dry run)")

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
    sessions: async_sessionmaker[AsyncSession], journey: JourneyDefinition, patient_id: str
) -> DryRun:
    """The path `journey` would take for the patient (`PatientNotFound` `ApplicationError` when there is
    no such patient)."""
    async with sessions() as session:
        entry, enters, trigger = await _entry(session, journey, patient_id)
        scope = ExpressionScope(enrollment_id=DRY_RUN_ID, patient_id=patient_id, trigger=trigger)
        variables = await load_variables(session, scope, journey_key=journey.key)
    steps = DryRunSteps(variables, seed=f"{DRY_RUN_ID}:{patient_id}")
    try:
        outcome = await interpret(steps, journey)
    except JourneyEndedError as ended:
        return DryRun(entry, enters, steps.path, ended.outcome)
    except _Stopped as stopped:
        return DryRun(entry, enters, steps.path, "stopped", str(stopped))
    return DryRun(entry, enters, steps.path, outcome)
