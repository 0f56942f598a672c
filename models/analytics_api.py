"""Response bodies of the analytics endpoints (`/v1/analytics/...`): counts only, never a patient."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FunnelStepView(BaseModel):
    """One step of a journey's funnel."""

    id: str
    entered: int = Field(description="passed + waiting")
    passed: int = Field(description="step records: enrollments that ran the step (each visit counts)")
    waiting: int = Field(description="running enrollments at this step now (whatever the window)")
    timed_out: int = Field(description="`wait_for` steps that ended by their timeout")
    exited: int = Field(description="enrollments that exited, were cancelled or failed after this step")
    exited_by_status: dict[str, int] = {}
    results: dict[str, int] = Field(default={}, description="step records per result")
    branches: dict[str, int] = Field(default={}, description="branch taken (matched condition or A/B path)")
    median_seconds: int | None = Field(
        default=None, description="time from enrollment to the step: upper bound of the median's bucket"
    )
    p90_seconds: int | None = None


class FunnelOutcomeView(BaseModel):
    """Enrollments that ended with one outcome (the goal reached)."""

    outcome: str
    count: int
    statuses: dict[str, int]
    median_seconds: int | None = None
    p90_seconds: int | None = None


class FunnelView(BaseModel):
    """A journey's funnel over the window."""

    journey_key: str
    version: int | None = Field(description="the version counted; null: every version")
    segment: str | None = Field(
        default=None,
        description="the segment its enrollments entered through (`_none`: started otherwise); null: all",
    )
    channel: str | None = Field(
        default=None, description="the channel its steps' records sent on; null: every step"
    )
    entered: int = Field(description="enrollments that started in the window")
    steps: list[FunnelStepView]
    outcomes: dict[str, int] = Field(description="enrollments that ended in the window, per outcome")
    outcome_details: list[FunnelOutcomeView]


class MessageRowView(BaseModel):
    """One group's delivery and engagement."""

    key: str | None = Field(description="the channel, journey, template or campaign; null: none")
    messages: int = Field(description="messages recorded (including blocked ones)")
    sent: int = Field(description="accepted by the provider")
    delivered: int
    failed: int = Field(description="failed or undelivered")
    bounced: int
    opened: int
    clicked: int
    blocked: int = Field(description="recorded as skipped by a guardrail")
    replied: int = Field(description="sent, and the patient texted back (not a keyword) within 7 days")
    opted_out: int = Field(description="sent, and the patient withdrew a consent within 7 days")
    blocked_by: dict[str, int] = Field(default={}, description="blocking decisions per guardrail rule")
    failed_by: dict[str, int] = Field(
        default={},
        description="failed messages per reason: the provider and the error code it gave "
        "(`twilio code 21211`, `sendgrid HTTP 400`, `smtp SMTP 550`), `<provider> other` without one",
    )
    deferred_by: dict[str, int] = Field(default={}, description="deferrals per guardrail rule")
    rates: dict[str, float | None] = Field(description="`<part>_of_<whole>`; null when the whole is 0")


class MessageAnalyticsView(BaseModel):
    """Delivery and engagement grouped one way."""

    group_by: str
    rows: list[MessageRowView]


class VariantView(BaseModel):
    """One variant: exposures (messages sent), conversions, the rate with its 95 % interval (Wilson),
    and the two-sided p-value of the two-proportion test against the leading variant."""

    variant: str
    exposures: int
    conversions: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = Field(default=None, description="against the leader; null for the leader")


class AbView(BaseModel):
    """A campaign run's A/B comparison."""

    campaign_key: str
    run_id: str
    metric: str = Field(description="the conversion counted: delivered, opened, clicked or replied")
    variants: list[VariantView]
    winner: str | None = Field(description="null unless the rule declares one")
    rule: str


class JourneyAbView(BaseModel):
    """A journey's split test compared (the rule as for campaigns)."""

    journey_key: str
    step: str
    goal: str = Field(description="the outcome counted as a conversion")
    variants: list[VariantView]
    winner: str | None
    rule: str


class SeriesPointView(BaseModel):
    """One hour or day: its start in the viewer's zone, and its counts."""

    start: datetime
    counts: dict[str, int]


class SeriesView(BaseModel):
    """Counts per hour or day (hours and days without any fact left out)."""

    interval: str
    timezone: str
    points: list[SeriesPointView]


class AttendanceRowView(BaseModel):
    """One event session's registrations by status."""

    event_key: str
    session_id: str
    registered: int
    offered: int = Field(description="offered a freed seat, not yet accepted")
    waitlisted: int
    cancelled: int
    attended: int
    no_show: int
    offers: int = Field(description="offers of freed seats made (an offer that lapsed counts too)")
    no_show_rate: float | None = Field(description="no_show / (attended + no_show); null when 0")


class AttendanceView(BaseModel):
    """Attendance per event and session, and the invitations sent per event."""

    rows: list[AttendanceRowView]
    invited: dict[str, int] = Field(
        default={},
        description="per event: invitations that went out, from journeys' invite steps (the step's "
        "message queued, sent, delivered or printed) and from campaigns inviting to it (messages sent)",
    )
