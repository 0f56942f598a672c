"""Inputs and results of workflows, signals, queries and activities.

Every model is frozen; every field added later gets a default so an older worker can read it, and
unknown fields are ignored so an older worker can read a newer payload.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from models.base import TemporalModel
from models.journey import (
    EnrollSpec,
    FetchSpec,
    JourneyDefinition,
    OverCap,
    Purpose,
    SendSpec,
    TaskSpec,
    UpdateSpec,
)
from models.voice import CallScript

EnrollmentStatus = Literal["running", "completed", "exited", "cancelled", "failed"]
MessageStatus = Literal[
    "pending", "sending", "queued", "sent", "delivered", "undelivered", "failed", "skipped", "printed"
]
TERMINAL_ENROLLMENT_STATUSES: frozenset[str] = frozenset({"completed", "exited", "cancelled", "failed"})


class PatientEvent(TemporalModel):
    """Something that happened to a patient: a reply, a booking, a no-show."""

    id: str
    type: str
    data: dict[str, Any] = {}
    occurred_at: datetime | None = None


class FhirResourceRef(TemporalModel):
    """One version of one FHIR resource in the patient store."""

    resource_type: str
    resource_id: str
    version_id: str

    @property
    def versioned_reference(self) -> str:
        """`Observation/abc/_history/v1`."""
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version_id}"


class EnrollmentTrigger(TemporalModel):
    """What started an enrollment: a FHIR resource version, a patient event, a manual request, or
    another enrollment's `enroll` step."""

    kind: Literal["fhir", "event", "manual", "enrollment"]
    resource: FhirResourceRef | None = None
    event: PatientEvent | None = None
    parent_enrollment_id: str | None = None


class ExpressionScope(TemporalModel):
    """References from which the variables of expressions and templates are loaded in an activity."""

    enrollment_id: str
    patient_id: str
    trigger: EnrollmentTrigger
    event: PatientEvent | None = None
    context: dict[str, Any] = {}
    # Names a step gives its own message (an `invite` step's `invite`), beside the ones above.
    variables: dict[str, Any] = {}


class ResumeState(TemporalModel):
    """Where a run that continued as new picks up: the next step (definitions) or the last checkpoint
    (code journeys), with the bookkeeping that must survive the new run."""

    position: str | None = None
    checkpoint: dict[str, Any] | None = None
    visits: dict[str, int] = {}
    events: list[PatientEvent] = []
    window_start: int = 0
    seen_event_ids: list[str] = []
    consumed_event_ids: list[str] = []
    last_event: PatientEvent | None = None
    recorded_steps: int = 0
    paused: bool = False
    runs: int = 1


class EnrollmentInput(TemporalModel):
    """Start of an enrollment workflow; the definition is frozen in so the version never changes under it."""

    enrollment_id: str
    patient_id: str
    journey: JourneyDefinition
    trigger: EnrollmentTrigger
    context: dict[str, Any] = {}
    resume: ResumeState | None = None


class EnrollmentResult(TemporalModel):
    """How an enrollment ended."""

    status: EnrollmentStatus
    outcome: str | None = None


class StepRecord(TemporalModel):
    """One executed step in an enrollment's history."""

    seq: int
    step: str
    at: datetime
    result: str
    detail: str | None = None


class EnrollmentState(TemporalModel):
    """An enrollment's live state, answered by the workflow's query."""

    status: EnrollmentStatus
    current_step: str | None = None
    outcome: str | None = None
    paused: bool = False
    history: list[StepRecord] = []


class PauseRequest(TemporalModel):
    """Hold the enrollment before its next step (or let it go on)."""

    reason: str | None = None


class CancelRequest(TemporalModel):
    """Cancel an enrollment; the reason goes into its history."""

    reason: str = "cancelled by API"


class ProgressUpdate(TemporalModel):
    """A change to an enrollment's projection in the database, with the steps run since the last one."""

    enrollment_id: str
    status: EnrollmentStatus
    current_step: str | None = None
    outcome: str | None = None
    paused: bool = False
    records: list[StepRecord] = []


class EvaluateConditionsInput(TemporalModel):
    """FHIRPath conditions to evaluate, in order, over an enrollment's variables."""

    scope: ExpressionScope
    conditions: list[str]


class EvaluateConditionsResult(TemporalModel):
    """Index of the first condition that held, if any."""

    first_true: int | None = None


class NextLocalTimeInput(TemporalModel):
    """The next moment a patient's clock shows `time`, after `after`."""

    patient_id: str
    time: str
    after: datetime


class FacilityCalendarInput(TemporalModel):
    """The calendar business-day waits of a patient follow."""

    patient_id: str


class FacilityCalendarResult(TemporalModel):
    """The patient's facility (None: the install's defaults), its time zone and holidays."""

    facility: str | None = None
    timezone: str
    holidays: list[date] = []


class NextLocalTimeResult(TemporalModel):
    """A moment in UTC, and the time zone it was computed in."""

    at: datetime
    timezone: str


class StepCall(TemporalModel):
    """Identifies one execution of a step: the enrollment's scope, the step and its visit."""

    journey_key: str
    journey_version: int
    step_id: str
    visit: int = Field(ge=1)
    scope: ExpressionScope

    @property
    def idempotency_key(self) -> str:
        """Identifies this step's effect across activity retries and worker restarts."""
        return f"{self.scope.enrollment_id}/{self.step_id}/{self.visit}"


class ClosingProjection(TemporalModel):
    """What the enrollment's projection says once a journey's last step, a send, has settled: written
    by the send in the transaction that records the message, so the journey ends without a write of its
    own. `progress` holds the steps recorded before this one; the send adds its own as step `seq`."""

    progress: ProgressUpdate
    seq: int


class SendMessageInput(TemporalModel):
    """One send step's attempt.

    `due_at` is the workflow's time when the attempt was made (quiet hours and caps are judged at the
    later of it and the clock); `purpose` and `over_cap` come from the journey; `closing` is set when the
    send is the journey's last step.
    """

    call: StepCall
    send: SendSpec
    due_at: datetime | None = None
    purpose: Purpose | None = None
    over_cap: OverCap = "defer"
    # A `call` step's script (a `voice` send without one just says its body).
    script: CallScript | None = None
    closing: ClosingProjection | None = None


class SendMessageResult(TemporalModel):
    """The recorded message and what happened to it.

    `deliver_queue` is set when the message is recorded but its provider is rate limited: the workflow
    hands it to that task queue, where the Temporal server paces deliveries across every worker.
    """

    message_id: str | None = None
    status: MessageStatus | Literal["deferred"]
    reason: str | None = None
    channel: str | None = None
    deliver_queue: str | None = None
    # A deferred send (quiet hours, a frequency cap): the rule, and when to try again.
    rule: str | None = None
    defer_until: datetime | None = None
    # The worker writes outreach back to FHIR: the journey hands the message to `FhirWriteBack`.
    write_back: bool = False
    # The send wrote the input's `closing` projection with the message.
    projected: bool = False


class WriteBackRiskInput(TemporalModel):
    """Write one risk score of one discharge to the FHIR source as a RiskAssessment, as it is now."""

    encounter_id: str
    score: str


class WriteBackInput(TemporalModel):
    """What the `FhirWriteBack` workflow writes, as it is when written: a message (as a Communication),
    a planned send (a CommunicationRequest, named by the send's idempotency key), a task (a Task), a
    survey's answers (a QuestionnaireResponse) or a risk score (a RiskAssessment).

    With `planned_key`, `revoked` says the planned send was called off (the enrollment was cancelled or
    exited while it waited).
    """

    message_id: str | None = None
    task_id: str | None = None
    survey_response_id: str | None = None
    risk: WriteBackRiskInput | None = None
    planned_key: str | None = None
    revoked: bool = False
    # A campaign run's range of recipients (`first`..`last`): the Communication of each of its messages.
    campaign_run_id: str | None = None
    first: int | None = None
    last: int | None = None


class WriteBackMessageInput(TemporalModel):
    """Write one message to the FHIR source as a Communication."""

    message_id: str


class WriteBackTaskInput(TemporalModel):
    """Write one care task to the FHIR source as a Task, as it is now."""

    task_id: str


class WriteBackResult(TemporalModel):
    """The resource written (`Communication/aftercare-...`, `Task/aftercare-task-...`) and its status."""

    reference: str | None = None
    status: str | None = None
    written: int = 1


class DeliverMessageInput(TemporalModel):
    """Deliver a recorded message through its channel's provider."""

    message_id: str


class FetchInput(TemporalModel):
    """Read FHIR resources for a `fetch` step; `name` is what later steps call them."""

    call: StepCall
    fetch: FetchSpec
    name: str


class FetchResult(TemporalModel):
    """How many resources were read (the resources stay in the database, out of the history)."""

    count: int
    total: int | None = None


class CreateTaskInput(TemporalModel):
    """Create a care-team task for a step."""

    call: StepCall
    task: TaskSpec


class CreateTaskResult(TemporalModel):
    """The task created (or found, on a retry); `write_back` when the worker writes it to FHIR."""

    task_id: str
    queue: str
    write_back: bool = False


class UpdateAttributesInput(TemporalModel):
    """Set patient attributes for a step."""

    call: StepCall
    update: UpdateSpec


class UpdateAttributesResult(TemporalModel):
    """The attributes as they were written."""

    values: dict[str, Any] = {}


class StartEnrollmentInput(TemporalModel):
    """Enroll the patient in another journey from a step."""

    call: StepCall
    enroll: EnrollSpec


class StartEnrollmentResult(TemporalModel):
    """The other journey's enrollment, or why there is none."""

    enrollment_id: str | None = None
    created: bool = False
    reason: str | None = None


class ResolveMomentInput(TemporalModel):
    """A FHIRPath dateTime over the enrollment's variables, plus an offset."""

    scope: ExpressionScope
    expression: str
    offset_seconds: float = 0.0


class ResolveMomentResult(TemporalModel):
    """The moment, or why there is none."""

    at: datetime | None = None
    reason: str | None = None


class ReconcileInput(TemporalModel):
    """How far back to look for enrollments whose projection and workflow disagree."""

    stale_after_seconds: float = 120.0
    limit: int = 500


class ReconcileResult(TemporalModel):
    """What reconciliation repaired."""

    closed: int = 0
    restarted: int = 0
    notifications_redriven: int = 0


class ParkNotificationInput(TemporalModel):
    """A notification whose work failed for good, and why."""

    notification_id: str
    reason: str


class ProcessNotificationInput(TemporalModel):
    """Finish a received subscription notification: read its resources, or recover what it missed."""

    notification_id: str


class NotificationProcessed(TemporalModel):
    """What finishing a notification did."""

    read: int
    stored: int
    triggered: int
    missing: int = 0
    polled: bool = False
    parked: str | None = None


class PollSourceInput(TemporalModel):
    """Poll a FHIR source (all its watched types, or the ones given)."""

    source_key: str
    resource_types: list[str] | None = None


class SourceTypes(TemporalModel):
    """The resource types a source watches."""

    resource_types: list[str]


class PollTypeInput(TemporalModel):
    """Poll one resource type of a source since its high-water mark."""

    source_key: str
    resource_type: str


class PollTypeResult(TemporalModel):
    """One type's poll: resources seen, stored as new, journeys started, and the mark."""

    seen: int
    stored: int
    triggered: int
    high_water: datetime | None = None


class PollSourceResult(TemporalModel):
    """A whole poll run, per type."""

    types: dict[str, PollTypeResult]
