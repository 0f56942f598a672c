"""Inputs and results of workflows, signals, queries and activities.

Every model is frozen; every field added later gets a default so an older worker can read it, and
unknown fields are ignored so an older worker can read a newer payload.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from models.base import TemporalModel
from models.journey import JourneyDefinition, SendSpec

EnrollmentStatus = Literal["running", "completed", "exited", "cancelled", "failed"]
MessageStatus = Literal[
    "pending", "sending", "queued", "sent", "delivered", "undelivered", "failed", "skipped"
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
    """What started an enrollment: a FHIR resource version, a patient event, or a manual request."""

    kind: Literal["fhir", "event", "manual"]
    resource: FhirResourceRef | None = None
    event: PatientEvent | None = None


class ExpressionScope(TemporalModel):
    """References from which the variables of expressions and templates are loaded in an activity."""

    enrollment_id: str
    patient_id: str
    trigger: EnrollmentTrigger
    event: PatientEvent | None = None
    context: dict[str, Any] = {}


class EnrollmentInput(TemporalModel):
    """Start of an enrollment workflow; the definition is frozen in so the version never changes under it."""

    enrollment_id: str
    patient_id: str
    journey: JourneyDefinition
    trigger: EnrollmentTrigger
    context: dict[str, Any] = {}


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
    history: list[StepRecord] = []


class CancelRequest(TemporalModel):
    """Cancel an enrollment; the reason goes into its history."""

    reason: str = "cancelled by API"


class ProgressUpdate(TemporalModel):
    """A change to an enrollment's projection in the database, with the steps run since the last one."""

    enrollment_id: str
    status: EnrollmentStatus
    current_step: str | None = None
    outcome: str | None = None
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


class NextLocalTimeResult(TemporalModel):
    """A moment in UTC, and the time zone it was computed in."""

    at: datetime
    timezone: str


class SendMessageInput(TemporalModel):
    """One send step's attempt; `visit` counts repeats of the same step in one enrollment."""

    journey_key: str
    journey_version: int
    step_id: str
    visit: int = Field(ge=1)
    scope: ExpressionScope
    send: SendSpec

    @property
    def idempotency_key(self) -> str:
        """Identifies this send across activity retries and worker restarts."""
        return f"{self.scope.enrollment_id}/{self.step_id}/{self.visit}"


class SendMessageResult(TemporalModel):
    """The recorded message and what happened to it."""

    message_id: str | None = None
    status: MessageStatus
    reason: str | None = None
