"""Journey definitions (contract §3): a closed, discriminated union of step models with stable ids.

A definition is data. The interpreter in `workflows/enrollment.py` dispatches on the step's type, never
on a name taken from user input, and the whole definition is frozen into each enrollment's input.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator
from pydantic_core import PydanticCustomError

from models.base import DefinitionModel, OwnerFacility
from models.durations import IsoDuration, SignedIsoDuration, format_iso_duration
from models.surveys import SurveySpec
from models.voice import CALL_EVENT_TYPES, CallScript

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=64)]
StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
EventType = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$", min_length=1, max_length=100)
]
Outcome = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
ResourceTypeName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+$", max_length=64)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
AttributeValue = str | int | float | bool | None
Expression = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Channel = Literal["sms", "email", "letter", "push", "voice"]
ChannelChoice = Literal["sms", "email", "letter", "push", "voice", "best"]
# The default fallback order; a call (`voice`) is only placed where a send or `fallback` names it.
CHANNELS: tuple[Channel, ...] = ("sms", "email", "push", "letter")
Reentry = Literal["never", "after_exit", "always"]
# Why a message is sent (consent is given or withdrawn per channel and purpose).
Purpose = Literal["care_coordination", "appointment_reminders", "health_education", "surveys", "marketing"]
PURPOSES: tuple[Purpose, ...] = (
    "care_coordination",
    "appointment_reminders",
    "health_education",
    "surveys",
    "marketing",
)
DEFAULT_PURPOSE: Purpose = "care_coordination"
# What happens to a send over a frequency cap: wait for room under the cap, or drop it.
OverCap = Literal["defer", "drop"]


# --- entry and exit -------------------------------------------------------------------------------


class FhirEntry(DefinitionModel):
    """Patients enter when a FHIR resource of this type is created or updated and the criteria hold."""

    resource: ResourceTypeName
    interactions: list[Literal["create", "update"]] = Field(default=["create", "update"], min_length=1)
    criteria: Expression | None = None


class EventEntry(DefinitionModel):
    """Patients enter when a trigger event of this type arrives (`POST /v1/triggers`)."""

    type: EventType
    criteria: Expression | None = None


class Entry(DefinitionModel):
    """How patients enter on their own; enrollment through the API always works. `segment`: members
    enter when they join the segment (a journey with the exit rule `{event: segment.exited, outcome:
    segment_exit}` ends when they leave it)."""

    fhir: FhirEntry | None = None
    event: EventEntry | None = None
    segment: Key | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Entry:
        if sum(1 for way in (self.fhir, self.event, self.segment) if way is not None) != 1:
            raise ValueError("entry needs exactly one of `fhir`, `event` or `segment`")
        return self


class ExitRule(DefinitionModel):
    """Leave the journey early when this event arrives (a goal reached, an exit criterion met)."""

    event: EventType
    outcome: Outcome = "exited"
    criteria: Expression | None = None


# --- step bodies ----------------------------------------------------------------------------------


Attachment = Literal["event_invite", "check_in_qr"]


class SendSpec(DefinitionModel):
    """What a `send` step sends: a stored template, or an inline body on a channel.

    `channel: best` picks the patient's preferred reachable channel: their preference first, then the
    `fallback` order (by default sms, email, push, letter), skipping channels the patient has no contact
    point on, has withdrawn consent for, or whose address is suppressed. A template's channels are the
    channels it has variants for.
    """

    template: Key | None = None
    channel: ChannelChoice | None = None
    fallback: list[Channel] | None = Field(default=None, min_length=1)
    subject: str | None = None
    body: str | None = None
    # The message's purpose (else the template's, else the journey's, else care_coordination), and
    # whether it may go out in the patient's quiet hours (recorded as an override when it does).
    purpose: Purpose | None = None
    urgent: bool = False
    # Files an email carries, for the registration of the event the journey heard of (`event.data.
    # registration_id`): its calendar invite (`event_invite`) and check-in QR code (`check_in_qr`).
    attach: list[Attachment] = []

    @model_validator(mode="after")
    def _one_source(self) -> SendSpec:
        if (self.template is None) == (self.body is None):
            raise ValueError("send needs either `template` or an inline `body`, not both")
        if self.body is not None and self.channel is None:
            raise ValueError("an inline `body` needs a `channel` (or `channel: best`)")
        if self.body is not None and self.channel == "email" and not self.subject:
            raise ValueError("an inline email needs a `subject`")
        if self.attach and self.channel != "email":
            raise ValueError("`attach` goes with `channel: email`")
        if self.fallback is not None:
            if self.channel not in (None, "best"):
                raise ValueError("`fallback` goes with `channel: best`")
            if len(set(self.fallback)) != len(self.fallback):
                raise ValueError("`fallback` lists a channel twice")
        return self

    @property
    def chooses_channel(self) -> bool:
        """True when the channel is picked per patient rather than fixed by the step."""
        return self.channel == "best" or self.fallback is not None


def describe_send(spec: SendSpec) -> str:
    """What a send sends, in words: `template x by SMS`, `an inline message on the best channel`."""
    what = f"template {spec.template}" if spec.template else "an inline message"
    if spec.chooses_channel:
        return f"{what} on the best channel"
    return f"{what} by {spec.channel}" if spec.channel else what


class TimeOfDay(DefinitionModel):
    """A local time of day in the patient's time zone."""

    time: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class WaitAt(DefinitionModel):
    """A moment taken from the data: a FHIRPath dateTime (e.g. `%trigger.start`) plus an offset. With
    `if_passed`, a moment already past (or unreadable) jumps to that step instead of the next one."""

    expression: Expression
    offset: SignedIsoDuration = timedelta(0)
    if_passed: StepId | None = None


class WaitSpec(DefinitionModel):
    """Wait for a fixed duration, until the next local time of day, until a moment from the data, or
    for business days on the calendar of the patient's facility (weekends and its holidays skipped)."""

    duration: IsoDuration | None = None
    until: TimeOfDay | None = None
    at: WaitAt | None = None
    business_days: int | None = Field(default=None, ge=1, le=365)
    calendar: Literal["hospital"] = "hospital"  # the patient's facility's calendar (contract §6)

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitSpec:
        chosen = (self.duration, self.until, self.at, self.business_days)
        if sum(value is not None for value in chosen) != 1:
            raise ValueError("wait needs exactly one of `duration`, `until`, `at` or `business_days`")
        return self


class WaitForSpec(DefinitionModel):
    """Wait for a patient event; on timeout go to `on_timeout` (or carry on with the next step). The
    timeout is a duration (`timeout`) or business days on the calendar of the patient's facility
    (`timeout_business_days`, weekends and its holidays skipped, to the same time of day)."""

    event: EventType
    timeout: IsoDuration | None = None
    timeout_business_days: int | None = Field(default=None, ge=1, le=365)
    on_timeout: StepId | None = None
    criteria: Expression | None = None

    @model_validator(mode="after")
    def _one_timeout(self) -> WaitForSpec:
        if (self.timeout is None) == (self.timeout_business_days is None):
            raise ValueError("`wait_for` needs exactly one of `timeout` and `timeout_business_days`")
        return self

    def describe_timeout(self) -> str:
        """The timeout in words: an ISO duration, or business days."""
        if self.timeout_business_days is not None:
            return f"{self.timeout_business_days} business days"
        assert self.timeout is not None
        return format_iso_duration(self.timeout)


class BranchWhen(DefinitionModel):
    """A branch case: when the FHIRPath expression is true, go to the step."""

    when: Expression
    goto: StepId


class BranchOtherwise(DefinitionModel):
    """The branch case taken when no `when` matched."""

    otherwise: StepId


def _case_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "otherwise" if "otherwise" in value else "when" if "when" in value else None
    return "otherwise" if isinstance(value, BranchOtherwise) else "when"


BranchCase = Annotated[
    Annotated[BranchWhen, Tag("when")] | Annotated[BranchOtherwise, Tag("otherwise")],
    Discriminator(
        _case_kind,
        custom_error_type="branch_case",
        custom_error_message="a branch case is either {when, goto} or {otherwise}",
    ),
]


class TaskSpec(DefinitionModel):
    """Work for a care team: a task in a queue, with a title and description rendered like messages."""

    queue: Key
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: str | None = None
    due: IsoDuration | None = None
    # Due after this many business days on the calendar of the patient's facility (weekends and its
    # holidays skipped, at the same time of day): `due_business_days: 1` rather than `due: P1D`.
    due_business_days: int | None = Field(default=None, ge=1, le=30)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"

    @model_validator(mode="after")
    def _one_due(self) -> TaskSpec:
        if self.due is not None and self.due_business_days is not None:
            raise ValueError("a task has `due` or `due_business_days`, not both")
        return self


class UpdateSpec(DefinitionModel):
    """Set patient attributes; string values are rendered like messages (`{{ event.data.body }}`)."""

    set: dict[AttributeName, AttributeValue] = Field(min_length=1)


class FetchSpec(DefinitionModel):
    """Read resources from a FHIR server: `query` is a search relative to the server's base URL, rendered
    like a message (`Observation?patient={{ patient.id }}&code=http://loinc.org|4548-4&_sort=-date`).

    The resources are kept with the enrollment as `as` (default: the step id, with `-` and `.` as `_`):
    `%fetched.<as>` in expressions, `fetched.<as>` in templates, newest visit of the step first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    query: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+(/[^?]*)?(\?.*)?$", max_length=2000)]
    into: AttributeName | None = Field(default=None, alias="as")
    limit: int = Field(default=50, ge=1, le=1000)
    source: Key | None = None


class SplitPath(DefinitionModel):
    """One arm of an A/B split."""

    goto: StepId
    weight: int = Field(default=1, ge=0)
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)] | None = None

    @property
    def label(self) -> str:
        """The arm's name, or its target."""
        return self.name or self.goto


DEFAULT_INVITE_SUBJECT = "Invitation: {{ invite.title }}"
DEFAULT_INVITE_BODY = (
    "Hi {{ patient.given }}, you are invited to {{ invite.title }}. "
    "Choose a session and register here: {{ invite.url }}"
)


class InviteSpec(SendSpec):
    """Invite the patient to an event: a message (a template, an inline body, or Aftercare's own
    words on the best channel) that carries the patient's self-service link, valid `valid_days`. The
    message sees `invite.url`, `invite.title`, `invite.event_key` and `invite.expires_at`."""

    event: Key
    valid_days: int = Field(default=14, ge=1, le=90)

    @model_validator(mode="before")
    @classmethod
    def _default_words(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("template") is None and value.get("body") is None:
            return {
                "channel": "best",
                "subject": DEFAULT_INVITE_SUBJECT,
                "body": DEFAULT_INVITE_BODY,
                **{name: item for name, item in value.items() if item is not None},
            }
        return value

    def sending(self) -> SendSpec:
        """The message part, as a send."""
        return SendSpec.model_validate(self.model_dump(exclude={"event", "valid_days"}))


class EnrollSpec(DefinitionModel):
    """Start another journey for the same patient."""

    journey: Key
    version: int | None = Field(default=None, ge=1)
    context: dict[str, Any] = {}


class CallSpec(CallScript):
    """What a `call` step says and asks (see `models/voice.py`), and why it calls (consent is per
    channel and purpose; `urgent` lets it ring in quiet hours). With `on_unanswered` (or `retries`)
    the step waits for the call's outcome, and goes there when no person answered the last call."""

    template: Key | None = None
    purpose: Purpose | None = None
    urgent: bool = False
    on_unanswered: StepId | None = None

    @model_validator(mode="after")
    def _one_greeting(self) -> CallSpec:
        if (self.say is None) == (self.template is None):
            raise ValueError("a call needs either `say` or a voice `template`, not both")
        return self


class EndSpec(DefinitionModel):
    """Finish the enrollment with an outcome."""

    outcome: Outcome = "completed"


# --- steps ----------------------------------------------------------------------------------------


class StepBase(DefinitionModel):
    """What every step has: a stable id, an optional readable name and an optional jump afterwards."""

    kind: ClassVar[str]
    id: StepId
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    goto: StepId | None = None

    def describe(self) -> str:
        """The step in words, for the Temporal UI and the enrollment history."""
        return self.name or self.id


class SendStep(StepBase):
    """Send a message."""

    kind: ClassVar[str] = "send"
    send: SendSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Sending {describe_send(self.send)}"


class WaitStep(StepBase):
    """Wait."""

    kind: ClassVar[str] = "wait"
    wait: WaitSpec

    def describe(self) -> str:
        """The step in words."""
        if self.wait.until is not None:
            return self.name or f"Waiting until {self.wait.until.time} (patient's time zone)"
        if self.wait.business_days is not None:
            return self.name or f"Waiting {self.wait.business_days} business days (the facility's calendar)"
        return self.name or f"Waiting {self.model_dump(mode='json')['wait']['duration']}"


class WaitForStep(StepBase):
    """Wait for a patient event."""

    kind: ClassVar[str] = "wait_for"
    wait_for: WaitForSpec

    def describe(self) -> str:
        """The step in words."""
        timeout = self.model_dump(mode="json")["wait_for"]["timeout"]
        return self.name or f"Waiting for {self.wait_for.event} (up to {timeout})"


class BranchStep(StepBase):
    """Go to the first case whose condition holds."""

    kind: ClassVar[str] = "branch"
    branch: list[BranchCase] = Field(min_length=1)

    def describe(self) -> str:
        """The step in words."""
        return self.name or "Choosing a path"


class EndStep(StepBase):
    """Finish the enrollment."""

    kind: ClassVar[str] = "end"
    end: EndSpec = EndSpec()

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Ending ({self.end.outcome})"


class TaskStep(StepBase):
    """Create a task for a care-team queue (the journey goes on; wait for `task.completed` to hold)."""

    kind: ClassVar[str] = "task"
    task: TaskSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Creating a task for {self.task.queue}"


class UpdateStep(StepBase):
    """Set patient attributes."""

    kind: ClassVar[str] = "update"
    update: UpdateSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Updating {', '.join(sorted(self.update.set))}"


class FetchStep(StepBase):
    """Read FHIR resources into the enrollment for later branches and templates."""

    kind: ClassVar[str] = "fetch"
    fetch: FetchSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Reading {self.fetch.query.split('?')[0]} from the FHIR server"

    @property
    def fetched_name(self) -> str:
        """What the results are called in expressions and templates."""
        return self.fetch.into or fetched_name(self.id)


def fetched_name(step_id: str) -> str:
    """The default name of a `fetch` step's results: its id as an identifier (`latest-a1c` → `latest_a1c`)."""
    return "".join(character if character.isalnum() else "_" for character in step_id).lower()


class SplitStep(StepBase):
    """Send the patient down one of several weighted paths, the same one every time for an enrollment."""

    kind: ClassVar[str] = "split"
    split: list[SplitPath] = Field(min_length=2)

    @model_validator(mode="after")
    def _some_weight(self) -> SplitStep:
        if sum(path.weight for path in self.split) <= 0:
            raise ValueError("a split needs a path with a weight above zero")
        return self

    def describe(self) -> str:
        """The step in words."""
        return self.name or "Choosing an A/B path"


class InviteStep(StepBase):
    """Invite the patient to an event, with their self-service link (register, choose, cancel)."""

    kind: ClassVar[str] = "invite"
    invite: InviteSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Inviting to the event {self.invite.event}"


class EnrollStep(StepBase):
    """Enroll the patient in another journey."""

    kind: ClassVar[str] = "enroll"
    enroll: EnrollSpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Enrolling in {self.enroll.journey}"


class CallStep(StepBase):
    """Call the patient: say the script, ask its keypad questions (answers arrive as `voice.*` events)."""

    kind: ClassVar[str] = "call"
    call: CallSpec

    def describe(self) -> str:
        """The step in words."""
        asked = len(self.call.gather)
        return self.name or f"Calling the patient ({asked} question{'s' if asked != 1 else ''})"


class SurveyStep(StepBase):
    """Send a FHIR Questionnaire's link and wait for the answers (`survey.completed`) or the expiry
    (`survey.expired`); either becomes `%event` for the steps after it."""

    kind: ClassVar[str] = "survey"
    survey: SurveySpec

    def describe(self) -> str:
        """The step in words."""
        return self.name or f"Survey {self.survey.questionnaire}"


STEP_TYPES: tuple[type[StepBase], ...] = (
    SendStep,
    WaitStep,
    WaitForStep,
    BranchStep,
    TaskStep,
    UpdateStep,
    FetchStep,
    SplitStep,
    EnrollStep,
    SurveyStep,
    InviteStep,
    EndStep,
    CallStep,
)
STEP_KINDS: tuple[str, ...] = tuple(step_type.kind for step_type in STEP_TYPES)
WAITING_KINDS = frozenset({"wait", "wait_for"})


def _step_kind(value: Any) -> str | None:
    if isinstance(value, StepBase):
        return value.kind
    if isinstance(value, dict):
        present = [kind for kind in STEP_KINDS if kind in value]
        return present[0] if len(present) == 1 else None
    return None


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[InviteStep, Tag("invite")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[TaskStep, Tag("task")]
    | Annotated[UpdateStep, Tag("update")]
    | Annotated[FetchStep, Tag("fetch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[EnrollStep, Tag("enroll")]
    | Annotated[SurveyStep, Tag("survey")]
    | Annotated[EndStep, Tag("end")]
    | Annotated[CallStep, Tag("call")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


# --- the definition -------------------------------------------------------------------------------


class JourneyDefinition(DefinitionModel):
    """A journey: how patients enter, when they leave early, and the steps they go through."""

    key: Key
    version: int = Field(ge=1)
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None
    entry: Entry | None = None
    facility: OwnerFacility = None
    reentry: Reentry = "after_exit"
    exit: list[ExitRule] = []
    steps: list[Step] = []
    code: bool = False
    # The purpose of the journey's messages (a step or template may say otherwise), and what happens
    # to a send over a frequency cap (see README, "Consent and guardrails").
    purpose: Purpose | None = None
    over_cap: OverCap = "defer"

    @model_validator(mode="after")
    def _consistent_graph(self) -> JourneyDefinition:
        if self.code:
            if self.steps:
                raise PydanticCustomError(
                    "journey_code", "a code journey has no `steps`: its Python class runs"
                )
            return self
        if not self.steps:
            raise PydanticCustomError(
                "journey_steps", "a journey needs at least one step", {"loc": ("steps",)}
            )
        problem = next(iter(graph_problems(self)), None)
        if problem is not None:
            loc, message = problem
            safe = message.replace("{", "{{").replace("}", "}}")
            raise PydanticCustomError("journey_graph", safe, {"loc": loc})
        return self

    def step_index(self) -> dict[str, int]:
        """Position of each step by id."""
        return {step.id: position for position, step in enumerate(self.steps)}

    def listened_event_types(self) -> frozenset[str] | None:
        """Event types this journey reacts to once running (waits for or exits on); None when that cannot
        be known from the definition (code journeys: every event is delivered)."""
        if self.code:
            return None
        waited = {step.wait_for.event for step in self.steps if isinstance(step, WaitForStep)}
        if any(isinstance(step, CallStep) for step in self.steps):
            waited |= set(CALL_EVENT_TYPES.values())  # a call step may wait for its call's outcome
        if any(isinstance(step, SurveyStep) for step in self.steps):
            waited.add("survey.completed")
        return frozenset(waited | {rule.event for rule in self.exit})

    def expressions(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Every FHIRPath expression in the definition, with where it sits."""
        if self.entry and self.entry.fhir and self.entry.fhir.criteria:
            yield ("entry", "fhir", "criteria"), self.entry.fhir.criteria
        if self.entry and self.entry.event and self.entry.event.criteria:
            yield ("entry", "event", "criteria"), self.entry.event.criteria
        for position, rule in enumerate(self.exit):
            if rule.criteria:
                yield ("exit", position, "criteria"), rule.criteria
        for position, step in enumerate(self.steps):
            if isinstance(step, WaitStep) and step.wait.at is not None:
                yield ("steps", position, "wait", "at", "expression"), step.wait.at.expression
            if isinstance(step, WaitForStep) and step.wait_for.criteria:
                yield ("steps", position, "wait_for", "criteria"), step.wait_for.criteria
            if isinstance(step, BranchStep):
                for case_position, case in enumerate(step.branch):
                    if isinstance(case, BranchWhen):
                        yield ("steps", position, "branch", case_position, "when"), case.when


def _targets(step: StepBase, position: int) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if step.goto is not None:
        yield ("steps", position, "goto"), step.goto
    if isinstance(step, CallStep) and step.call.on_unanswered is not None:
        yield ("steps", position, "call", "on_unanswered"), step.call.on_unanswered
    if isinstance(step, WaitForStep) and step.wait_for.on_timeout is not None:
        yield ("steps", position, "wait_for", "on_timeout"), step.wait_for.on_timeout
    if isinstance(step, SurveyStep) and step.survey.on_expired is not None:
        yield ("steps", position, "survey", "on_expired"), step.survey.on_expired
    if isinstance(step, WaitStep) and step.wait.at is not None and step.wait.at.if_passed is not None:
        yield ("steps", position, "wait", "at", "if_passed"), step.wait.at.if_passed
    if isinstance(step, BranchStep):
        for case_position, case in enumerate(step.branch):
            target = case.otherwise if isinstance(case, BranchOtherwise) else case.goto
            field = "otherwise" if isinstance(case, BranchOtherwise) else "goto"
            yield ("steps", position, "branch", case_position, field), target
    if isinstance(step, SplitStep):
        for path_position, path in enumerate(step.split):
            yield ("steps", position, "split", path_position, "goto"), path.goto


def successors(definition: JourneyDefinition, position: int) -> list[int]:
    """Positions that can run right after the step at `position`."""
    index = definition.step_index()
    step = definition.steps[position]
    following = [position + 1] if position + 1 < len(definition.steps) else []
    if isinstance(step, EndStep):
        return []
    if isinstance(step, BranchStep):
        nexts = [index[target] for _, target in _targets(step, position) if target in index]
        has_otherwise = any(isinstance(case, BranchOtherwise) for case in step.branch)
        return nexts + ([] if has_otherwise else following)
    if isinstance(step, SplitStep):
        return [index[target] for _, target in _targets(step, position) if target in index]
    nexts = [index[target] for _, target in _targets(step, position) if target in index]
    return nexts + ([] if step.goto is not None else following)


def graph_problems(definition: JourneyDefinition) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every structural problem: duplicate ids, jumps to missing steps, misplaced `otherwise`, busy loops."""
    seen: dict[str, int] = {}
    for position, step in enumerate(definition.steps):
        if step.id in seen:
            yield ("steps", position, "id"), f"step id {step.id!r} is already used by steps[{seen[step.id]}]"
        seen.setdefault(step.id, position)
    for position, step in enumerate(definition.steps):
        for loc, target in _targets(step, position):
            if target not in seen:
                yield loc, f"step {step.id!r} jumps to {target!r}, but there is no step with that id"
        if isinstance(step, BranchStep):
            otherwise = [i for i, case in enumerate(step.branch) if isinstance(case, BranchOtherwise)]
            if len(otherwise) > 1 or (otherwise and otherwise[0] != len(step.branch) - 1):
                yield (
                    ("steps", position, "branch", otherwise[-1]),
                    f"step {step.id!r} may have one `otherwise`, as its last case",
                )
    yield from _busy_loops(definition)


def _always_waits(step: StepBase) -> bool:
    """Whether the step blocks every time it runs: a `wait.at` moment already past goes straight on."""
    if isinstance(step, WaitStep) and step.wait.at is not None:
        return False
    return step.kind in WAITING_KINDS


def _busy_loops(definition: JourneyDefinition) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """A cycle with no wait would spin forever inside one workflow task: refuse it."""
    if len({step.id for step in definition.steps}) != len(definition.steps):
        return
    busy = [i for i, step in enumerate(definition.steps) if not _always_waits(step)]
    graph = {i: [j for j in successors(definition, i) if j in busy] for i in busy}
    state: dict[int, int] = {}
    for start in busy:
        if state.get(start):
            continue
        stack: list[tuple[int, Iterator[int]]] = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                loop = [*path[path.index(child) :], child]
                names = " → ".join(definition.steps[i].id for i in loop)
                yield ("steps", node), f"steps {names} loop without a wait or wait_for step"
                return
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(graph[child])))
                path.append(child)
