"""Inputs and results of the `CampaignRun` workflow, its activities, updates and query."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from models.base import TemporalModel
from models.campaign import SendWindow

CampaignRunStatus = Literal["scheduled", "running", "paused", "completed", "cancelled", "failed"]
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"completed", "cancelled", "failed"})


class WorkRange(TemporalModel):
    """Ordinals of one time zone still to go through, not before `not_before` (deferred sends)."""

    zone: str
    first: int
    last: int
    not_before: datetime | None = None
    deferred: bool = False


class RunProgress(TemporalModel):
    """Where a run is, carried across continue-as-new: what is left, and the counts so far."""

    frozen: bool = False
    audience: int = 0
    todo: list[WorkRange] = []
    expires_at: datetime | None = None
    messaged: int = 0
    refused: int = 0
    batches: int = 0
    paused: bool = False


class CampaignRunInput(TemporalModel):
    """A run of a campaign version. Scheduled runs leave `run_id` unset: the run's id is its workflow
    id without the prefix (a schedule adds the scheduled time to it)."""

    campaign_key: str
    campaign_version: int
    run_id: str | None = None
    start_at: datetime | None = None
    send_window: SendWindow | None = None
    throttle_per_second: float | None = None
    batch_size: int = 500
    parallel_batches: int = Field(default=2, ge=1, le=16)
    expires_after_seconds: float = 7 * 86400
    progress: RunProgress | None = None
    # The facilities (subtrees) the launching caller reaches; empty: the whole group.
    facilities: list[str] = []


class CampaignRunResult(TemporalModel):
    """How a run ended."""

    run_id: str
    status: CampaignRunStatus
    audience: int = 0
    messaged: int = 0
    expired: int = 0


class CampaignRunState(TemporalModel):
    """A run's live state, answered by its query and its pause/resume updates."""

    run_id: str
    status: CampaignRunStatus
    phase: str | None = None
    paused: bool = False
    audience: int = 0
    messaged: int = 0
    refused: int = 0


class RunControl(TemporalModel):
    """Pause or resume a run (the reason goes into its phase)."""

    reason: str | None = None


class FreezeAudienceInput(TemporalModel):
    """Freeze the run's audience (once: a retry finds it frozen)."""

    run_id: str
    workflow_id: str
    campaign_key: str
    campaign_version: int
    facilities: list[str] = []  # only patients of these facilities' subtrees; empty: the whole group


class ZoneSpan(TemporalModel):
    """One time zone's ordinals."""

    zone: str
    first: int
    last: int
    count: int


class FreezeAudienceResult(TemporalModel):
    """The frozen audience, by time zone."""

    audience: int
    zones: list[ZoneSpan]
    segment_version: int | None = None


class WindowsInput(TemporalModel):
    """Send-window states of these zones at `now`."""

    zones: list[str]
    window: SendWindow | None = None
    now: datetime


class ZoneWindow(TemporalModel):
    """One zone's window: open until `closes_at`, or closed until `opens_at`."""

    zone: str
    open: bool
    closes_at: datetime | None = None
    opens_at: datetime | None = None


class WindowsResult(TemporalModel):
    """Every zone's window."""

    zones: list[ZoneWindow]


class CampaignBatchInput(TemporalModel):
    """Decide and send one range of a run's recipients: the pending ones (and the deferred ones due,
    when `deferred`), unless the window has closed by `not_after`. `due_at` is the workflow's time:
    the guardrails judge at the later of it and the clock."""

    run_id: str
    campaign_key: str
    campaign_version: int
    first: int
    last: int
    deferred: bool = False
    not_after: datetime | None = None
    due_at: datetime | None = None


class CampaignBatchResult(TemporalModel):
    """What one batch did. `complete` is False when the window closed before it began; `next_due` is
    the earliest moment a deferred recipient of the range may be tried again."""

    selected: int = 0
    messaged: int = 0
    deferred: int = 0
    refused: int = 0
    delivered: int = 0
    complete: bool = True
    next_due: datetime | None = None
    # The worker writes outreach back to FHIR: the run hands the range's messages to `FhirWriteBack`.
    write_back: bool = False


class RunProjection(TemporalModel):
    """A change to a run's projection in the database."""

    run_id: str
    workflow_id: str
    campaign_key: str
    campaign_version: int
    status: CampaignRunStatus
    phase: str | None = None
    scheduled_for: datetime | None = None
    ended: bool = False


class CloseRunInput(TemporalModel):
    """End a run: recipients still open become `expired` (or `cancelled`)."""

    run_id: str
    status: CampaignRunStatus
    recipient_state: Literal["expired", "cancelled"] = "expired"
    reason: str


class CloseRunResult(TemporalModel):
    """How many recipients were closed."""

    closed: int
