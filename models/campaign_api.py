"""Request and response bodies of the campaign endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.small_cells import REDACTED_COUNTS


class CampaignCreated(BaseModel):
    """A published campaign version."""

    key: str
    version: int


class CampaignSummary(BaseModel):
    """The latest version of a campaign and where it stands."""

    key: str
    version: int
    name: str
    segment: str
    status: str = Field(description="draft, scheduled, launched, paused or cancelled")
    recurring: str | None = None
    facility: str | None = Field(
        default=None, description="the facility it belongs to; none: the whole group"
    )


class CampaignList(BaseModel):
    """Campaigns, by key."""

    items: list[CampaignSummary]


class CampaignControlBody(BaseModel):
    """Which version to act on (default: the latest), and why."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)
    reason: str | None = Field(default=None, max_length=500)


class CampaignLaunched(BaseModel):
    """What a launch started: a run, or the schedule of a recurring campaign."""

    key: str
    version: int
    status: str
    run_id: str | None = None
    schedule_id: str | None = None


class CampaignControlled(BaseModel):
    """A campaign after pause, resume or cancel, with its run in progress when there is one."""

    key: str
    version: int
    status: str
    run_id: str | None = None
    run_status: str | None = None
    phase: str | None = None


class CountView(BaseModel):
    """Counts of a run (or one A/B variant of it). A count from 1 to 10 is null for a caller without
    `clinical:read` (the small-cell rule; the run's `redacted` names it)."""

    targeted: int | None = Field(description="recipients in the frozen audience")
    pending: int | None = Field(description="not decided yet (waiting for their turn or their window)")
    deferred: int | None = Field(description="waiting for a frequency cap or quiet hours to allow them")
    messaged: int | None = Field(description="a message was recorded for them")
    suppressed: int | None = Field(
        description="never to be messaged for this purpose: consent, deceased, minor"
    )
    skipped: int | None = Field(description="could not be messaged: unreachable, no PHI consent, over a cap")
    expired: int | None = Field(description="still open when the run ended")
    cancelled: int | None = Field(description="still open when the run was cancelled")
    sent: int | None = Field(description="taken by the provider")
    delivered: int | None
    opened: int | None
    clicked: int | None
    replied: int | None = Field(description="answered within 7 days (SMS replies that are not keywords)")
    opted_out: int | None = Field(description="withdrew consent within 7 days")
    failed: int | None = Field(description="refused or undeliverable")
    in_flight: int | None = Field(description="recorded, not yet taken by the provider")


class ReasonView(BaseModel):
    """How many recipients were passed over for one reason."""

    state: str
    rule: str | None = None
    reason: str | None = None
    count: int | None


class CampaignRunView(BaseModel):
    """One run of a campaign: its status, what it is doing, and its results so far."""

    run_id: str
    campaign_key: str
    campaign_version: int
    status: str
    phase: str | None = None
    segment: str
    segment_version: int | None = None
    audience: int | None = None
    scheduled_for: datetime | None = None
    frozen_at: datetime | None = None
    started_at: datetime
    ended_at: datetime | None = None
    workflow_id: str
    totals: CountView | None = None
    variants: dict[str, CountView] = {}
    passed_over: list[ReasonView] = []
    redacted: list[str] = Field(default=[], description=REDACTED_COUNTS)


class CampaignRunList(BaseModel):
    """A campaign's runs, newest first (without results; read one run for those)."""

    items: list[CampaignRunView]
