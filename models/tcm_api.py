"""API shapes of Transitional Care Management: episodes (the worklist) and the compliance report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TcmAttemptView(_Frozen):
    """A contact attempt: a call task's outcome, an automated voice call's, or a reply from the patient."""

    at: datetime
    kind: Literal["call", "reply"]
    outcome: str = Field(
        description="a task's `reached`, `no_answer`, `left_message`; a voice call's `answered`, "
        "`no_answer`, `busy`, `machine`; or the reply's channel"
    )
    interactive: bool
    source: str = Field(description="`Task/<id>`, `VoiceCall/<message id>` or `InboundMessage/<id>`")


class TcmEventView(_Frozen):
    """Something that happened, and the record it came from."""

    at: datetime
    source: str


class TcmEpisodeView(_Frozen):
    """An episode with its deadlines and what happened so far."""

    id: str
    patient_id: str
    encounter_id: str
    facility: str | None
    timezone: str
    discharged_at: datetime
    contact_due_at: datetime
    visit_due_at: datetime
    seconds_to_contact_due: int = Field(description="negative once the deadline has passed")
    complexity: Literal["high", "moderate"]
    complexity_source: Literal["risk", "staff"]
    risk_band: str | None
    status: Literal["open", "closed", "readmitted"]
    attempts: list[TcmAttemptView]
    contacted_at: datetime | None = Field(description="the first interactive contact")
    contact_met: bool
    contact_met_by: Literal["interactive", "attempts"] | None = Field(
        description="an interactive contact in time, or two timely unsuccessful attempts"
    )
    visit: TcmEventView | None
    visit_within_days: Literal[7, 14] | None
    medication_reconciled: TcmEventView | None
    readmission: TcmEventView | None
    billing_candidate: Literal["99495", "99496"] | None


class TcmEpisodeList(_Frozen):
    """The worklist: open episodes still to be contacted first, by the time left to the contact deadline."""

    items: list[TcmEpisodeView]


class TcmComplexityChange(_Frozen):
    """Staff set an episode's complexity (and so the visit deadline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complexity: Literal["high", "moderate"]


class TcmReportRowView(_Frozen):
    """A group's figures over the period (`journey` null: discharges no journey took; `tcm` null:
    discharges without a TCM episode, or the total)."""

    journey: str | None
    version: int | None
    variant: str | None
    band: str | None
    tcm: Literal["contacted", "not_contacted"] | None = Field(
        description="`contacted`: the episode's contact requirement met in time; `not_contacted`: an "
        "episode without it; null: no TCM episode (before TCM began, or a discharge over 30 days old "
        "when first stored)"
    )
    discharges: int
    tcm_episodes: int = Field(description="discharges with a TCM episode")
    contacted_within_2_business_days: int
    contacted_rate: float | None
    seen_within_7_days: int
    seen_within_14_days: int
    seen_within_7_rate: float | None
    seen_within_14_rate: float | None
    candidates_99495: int
    candidates_99496: int
    readmissions_30_days: int
    readmission_rate: float | None
    readmission_ci_low: float | None = Field(description="95 % Wilson score interval")
    readmission_ci_high: float | None


class TcmReport(_Frozen):
    """Discharges of `[from, to)` (every inpatient discharge of the encounters, with or without a TCM
    episode): the total, and by journey, version, variant, risk band and TCM contact."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    total: TcmReportRowView
    groups: list[TcmReportRowView]
