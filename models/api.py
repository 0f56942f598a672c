"""Request and response schemas of the HTTP API (contract §2)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from models.journey import EventType
from models.temporal import EnrollmentStatus


class Request(BaseModel):
    """A request body: unknown fields are refused so typos are caught."""

    model_config = ConfigDict(extra="forbid")


class HealthStatus(BaseModel):
    """Each part is `ok` or says what is wrong."""

    status: Literal["ok", "degraded"]
    temporal: str
    database: str
    database_pool: str | None = None
    version: str | None = None


class RejectedEntry(BaseModel):
    """An entry of a batch Bundle that was not imported, and why (FHIR processes batch entries alone)."""

    entry: str
    status: str = "422"
    outcome: dict[str, Any]


class ImportResult(BaseModel):
    """New resource versions by type, versions already stored, and enrollments started; for a batch
    Bundle, the entries that were refused, each with its `OperationOutcome`."""

    imported: dict[str, int]
    unchanged: dict[str, int] = {}
    triggered: int
    rejected: list[RejectedEntry] = []


class NotificationResult(BaseModel):
    """What a subscription notification carried and what it started. `queued` names the recorded work
    handed to Temporal (reading id-only resources, searching again, recovering missed events)."""

    received: dict[str, int]
    unchanged: dict[str, int] = {}
    triggered: int
    kind: str | None = None
    parked: int = 0
    queued: list[str] = []
    missed_events: list[int] | None = None


class TemplateCreated(BaseModel):
    """The stored variant."""

    key: str
    channel: str
    locale: str
    version: int
    created: bool


class JourneyCreated(BaseModel):
    """The stored version."""

    key: str
    version: int


class JourneySummary(BaseModel):
    """A journey version and how patients enter it."""

    key: str
    version: int
    name: str
    reentry: str
    entry: dict[str, Any] | None = None
    facility: str | None = Field(
        default=None, description="the facility it belongs to; none: the whole group"
    )


class JourneyList(BaseModel):
    """Latest versions."""

    items: list[JourneySummary]


class EnrollmentRequest(Request):
    """Enroll a patient by hand."""

    patient_id: str = Field(min_length=1, max_length=64)
    context: dict[str, Any] = {}


class EnrollmentCreated(BaseModel):
    """The enrollment (new, or the one already running)."""

    enrollment_id: str
    status: EnrollmentStatus


class HistoryItem(BaseModel):
    """One executed step."""

    step: str
    at: datetime
    result: str
    detail: str | None = None


class EnrollmentView(BaseModel):
    """An enrollment's status, position and history."""

    enrollment_id: str
    journey_key: str
    journey_version: int
    patient_id: str
    status: EnrollmentStatus
    outcome: str | None
    current_step: str | None
    paused: bool = False
    started_at: datetime
    ended_at: datetime | None
    trigger: dict[str, Any]
    history: list[HistoryItem]
    facility: str | None = Field(default=None, description="the facility it was made for")


class EnrollmentSummary(BaseModel):
    """An enrollment in a patient's profile."""

    enrollment_id: str
    journey_key: str
    journey_version: int
    status: EnrollmentStatus
    outcome: str | None
    current_step: str | None
    started_at: datetime
    facility: str | None = Field(default=None, description="the facility it was made for")


class TriggerRequest(Request):
    """A patient event from a clinical system."""

    type: EventType
    patient_id: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = {}
    id: str | None = Field(default=None, min_length=1, max_length=200)


class TriggerAccepted(BaseModel):
    """Enrollments that received the event as a signal, and enrollments it started; `parked` says why
    an event was kept without delivery (its patient is not in the store yet)."""

    id: str
    delivered_to: list[str]
    started: list[str]
    parked: str | None = None


class CallView(BaseModel):
    """How a call (a `voice` message) went: Twilio's latest status, the outcome, how long it lasted,
    the keys pressed per question, and whether the patient was handed over or left a voicemail."""

    status: str | None = None
    outcome: str | None = None
    answered_by: str | None = None
    duration_seconds: int | None = None
    answers: dict[str, str] = {}
    transferred: bool = False
    voicemail_left: bool = False


class MessageView(BaseModel):
    """A message and its fate (`call`: how a call went)."""

    id: str
    patient_id: str
    enrollment_id: str | None
    journey_key: str | None
    step_id: str | None
    campaign_run_id: str | None = None
    channel: str
    to: str | None
    subject: str | None
    body: str | None
    # The extra email headers it was sent with: `List-Unsubscribe`, `List-Unsubscribe-Post`.
    headers: dict[str, str] = Field(default_factory=dict)
    status: str
    reason: str | None
    provider: str | None
    provider_message_id: str | None
    template_key: str | None
    locale: str | None
    purpose: str | None = None
    facility: str | None = None  # sent on behalf of this facility
    sender: str | None = None  # the facility's from-number or address (None: the install's)
    call: CallView | None = None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _no_headers(cls, value: object) -> object:
        return {} if value is None else value


class MessageList(BaseModel):
    """Messages, newest first."""

    items: list[MessageView]


class EnrollmentListItem(EnrollmentSummary):
    """An enrollment in a listing."""

    patient_id: str
    paused: bool = False


class EnrollmentList(BaseModel):
    """Enrollments, newest first; page back with `before=` the oldest `started_at` seen."""

    items: list[EnrollmentListItem]


class PauseBody(Request):
    """Why the enrollment is paused or resumed (kept in the Temporal UI)."""

    reason: str | None = Field(default=None, max_length=500)


class EnrollmentControl(BaseModel):
    """The enrollment's state after a pause or resume."""

    enrollment_id: str
    status: EnrollmentStatus
    paused: bool
    current_step: str | None


class BatchEnrollmentItem(Request):
    """One patient to enroll."""

    patient_id: str = Field(min_length=1, max_length=64)
    context: dict[str, Any] = {}


class BatchEnrollmentRequest(Request):
    """Patients to enroll in one journey at once."""

    patients: list[BatchEnrollmentItem] = Field(min_length=1, max_length=1000)
    context: dict[str, Any] = {}


class BatchEnrollmentOutcome(BaseModel):
    """What happened for one patient."""

    patient_id: str
    enrollment_id: str | None
    result: Literal["created", "existing", "refused", "unknown_patient"]
    reason: str | None = None


class BatchEnrollmentResult(BaseModel):
    """What happened for each patient, in the order given."""

    created: int
    results: list[BatchEnrollmentOutcome]


class TaskView(BaseModel):
    """A care-team task."""

    id: str
    queue: str
    status: str
    priority: str
    title: str
    description: str | None
    patient_id: str
    enrollment_id: str | None
    journey_key: str | None
    step_id: str | None
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    outcome: str | None
    note: str | None
    facility: str | None = Field(default=None, description="the facility it was made for")
    assignee: str | None = None
    assigned_at: datetime | None = None


class TaskList(BaseModel):
    """Tasks, the most urgent first."""

    items: list[TaskView]


class TaskCompletion(Request):
    """How the task went; delivered to the enrollment as a `task.completed` event."""

    outcome: str = Field(default="done", pattern=r"^[a-z0-9_-]+$", max_length=64)
    note: str | None = Field(default=None, max_length=4000)
    completed_by: str | None = Field(default=None, max_length=200)


class LibraryEntryView(BaseModel):
    """A ready-made journey."""

    key: str
    version: int
    name: str
    description: str
    entry: dict[str, Any] | None
    templates: list[str]


class LibraryList(BaseModel):
    """The ready-made journeys shipped with Aftercare."""

    items: list[LibraryEntryView]


class LibraryInstalled(BaseModel):
    """What installing a ready-made journey published."""

    key: str
    version: int
    templates: list[str]
    created: bool


class ConsentView(BaseModel):
    """The patient's current consent on a channel (the latest recorded change)."""

    channel: str
    purpose: str
    status: str
    source: str
    detail: str | None
    recorded_at: datetime


class ChannelReach(BaseModel):
    """Whether a send on this channel would reach the patient now, and if not, why."""

    channel: str
    reachable: bool
    reason: str | None


class ClinicalFactView(BaseModel):
    """A clinical fact of one of the person's records: codes are `system|code` tokens."""

    model_config = ConfigDict(from_attributes=True)

    resource_id: str
    patient_id: str
    codes: list[str]
    display: str | None
    status: str | None


class ConditionView(ClinicalFactView):
    """A condition (active ones: clinical status active, recurrence or relapse, and not abated)."""

    onset_at: datetime | None
    abatement_at: datetime | None


class ObservationView(ClinicalFactView):
    """The latest observation of a code (a component of a panel, such as systolic pressure, counts)."""

    effective_at: datetime | None
    value_number: float | None
    value_unit: str | None
    value_code: str | None
    value_text: str | None


class MedicationView(ClinicalFactView):
    """A medication request."""

    authored_at: datetime | None


class EncounterView(ClinicalFactView):
    """An encounter: admission is `start_at`, discharge `end_at`."""

    class_code: str | None
    reason_codes: list[str]
    start_at: datetime | None
    end_at: datetime | None
    discharge_disposition: str | None


class AllergyView(ClinicalFactView):
    """An allergy or intolerance."""

    criticality: str | None
    categories: list[str]


class ProcedureView(ClinicalFactView):
    """A procedure."""

    performed_at: datetime | None


class AppointmentView(ClinicalFactView):
    """An appointment."""

    start_at: datetime | None
    end_at: datetime | None


class ClinicalSummary(BaseModel):
    """The clinical summary over all of the person's records."""

    active_conditions: list[ConditionView]
    latest_observations: list[ObservationView]
    active_medications: list[MedicationView]
    recent_encounters: list[EncounterView]
    allergies: list[AllergyView]
    recent_procedures: list[ProcedureView]
    upcoming_appointments: list[AppointmentView]


class PatientIdentifierView(BaseModel):
    """An identifier of one of the person's records."""

    model_config = ConfigDict(from_attributes=True)

    system: str
    value: str
    patient_id: str


class LinkedRecordView(BaseModel):
    """A patient record that belongs to the person (`merge_id`: the merge that linked it, if any)."""

    record_id: str
    name: str | None
    birth_date: date | None
    merge_id: int | None


class IdentityMergeView(BaseModel):
    """A merge of `record_id` (and the records that followed it) into the person `person_id`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    record_id: str
    rule: str
    evidence: dict[str, Any]
    merged_at: datetime
    merged_by: str | None
    reversed_at: datetime | None
    reversed_by: str | None
    reversal_reason: str | None


class IdentityView(BaseModel):
    """Who the person is across sources: their records, identifiers and merges (reversed ones too)."""

    person_id: str
    records: list[LinkedRecordView]
    identifiers: list[PatientIdentifierView]
    merges: list[IdentityMergeView]


class IdentityCandidateView(BaseModel):
    """A possible match waiting for review."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    record_id: str
    other_id: str
    rule: str
    evidence: dict[str, Any]
    status: str
    found_at: datetime


class IdentityCandidateList(BaseModel):
    """The review queue, oldest first."""

    items: list[IdentityCandidateView]


class MergeRequest(Request):
    """Merge the patient `with` into the patient of the path (which survives)."""

    with_: str = Field(alias="with", min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


class ReverseMergeRequest(Request):
    """Why a merge is reversed."""

    reason: str = Field(min_length=1, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


class TimelineItem(BaseModel):
    """One event of the person's timeline: `kind` is encounter, condition, procedure, appointment,
    message or enrollment.started / enrollment.finished; `ref` the resource, message or enrollment id."""

    at: datetime
    kind: str
    title: str | None
    status: str | None
    ref: str
    patient_id: str


class PatientSummary(BaseModel):
    """Who a patient is, and no more: what tells one patient from another (a patient search's items)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    given: str | None
    family: str | None
    birth_date: date | None
    gender: str | None


class PatientView(PatientSummary):
    """The unified profile with the patient's enrollments and recent messages."""

    phone: str | None
    phone_status: str
    email: str | None
    language: str | None
    timezone: str | None
    deceased: bool
    preferred_channel: str | None = None
    consents: list[ConsentView]
    channels: list[ChannelReach] = []
    enrollments: list[EnrollmentListItem]
    recent_messages: list[MessageView]
    # The id asked for when it was merged into this person (the profile shown is the surviving one).
    resolved_from: str | None = None
    clinical: ClinicalSummary | None = None
    identity: IdentityView | None = None
    timeline: list[TimelineItem] = []
    # What was left out because the caller may not see clinical data (`clinical`, `timeline.clinical`, ...).
    redacted: list[str] = []


class WebhookEventsApplied(BaseModel):
    """What a provider's batch of events did."""

    applied: int
    duplicates: int
    unmatched: int


class SuppressionView(BaseModel):
    """An address that is not messaged, and why."""

    channel: str
    address: str
    reason: str
    source: str | None
    created_at: datetime


class SuppressionList(BaseModel):
    """Suppressions, newest first."""

    items: list[SuppressionView]


ConsentPurpose = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*|phi|care_coordination|appointment_reminders|health_education|surveys|marketing)$"
    ),
]
ConsentChannel = Annotated[str, StringConstraints(pattern=r"^(\*|sms|email|letter|push|voice)$")]


class ConsentChange(BaseModel):
    """One consent given or withdrawn: a channel (`*`: all) and a purpose (`*`: all; `phi`: consent to
    receive protected health information on the channel)."""

    model_config = ConfigDict(extra="forbid")

    channel: ConsentChannel
    purpose: ConsentPurpose = "*"
    status: Literal["granted", "revoked"]
    source: str = Field(default="api", min_length=1, max_length=64)
    detail: str | None = Field(default=None, max_length=1000)


class ConsentsUpdate(BaseModel):
    """`PUT /v1/patients/{id}/consents`: consent changes, and optionally the patient's own quiet hours
    (`22:00-07:00`, or `none`)."""

    model_config = ConfigDict(extra="forbid")

    consents: list[ConsentChange] = Field(default=[], max_length=100)
    quiet_hours: (
        Annotated[str, StringConstraints(pattern=r"^(none|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$")]
        | None
    ) = None


class ConsentsView(BaseModel):
    """The patient's current consents (latest per channel and purpose), their full history (newest
    first) and their own quiet hours, if set."""

    patient_id: str
    current: list[ConsentView]
    history: list[ConsentView]
    quiet_hours: str | None = None


class DecisionView(BaseModel):
    """One guardrail decision about a send attempt, and the rule that made it."""

    id: int
    decision: str
    rule: str
    reason: str | None
    channel: str | None
    purpose: str
    message_id: str | None
    enrollment_id: str | None
    journey_key: str | None
    step_id: str | None
    defer_until: datetime | None
    created_at: datetime
    facility: str | None = Field(default=None, description="the facility it was made for")


class DecisionsView(BaseModel):
    """A patient's send decisions, newest first."""

    items: list[DecisionView]
