"""Tables of campaigns: published definitions, launches, runs (projections of the `CampaignRun`
workflows, which are the state machine) and each run's frozen audience with what happened to each
patient (the audit of who was targeted, suppressed and why, and which message went).

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


class Campaign(Base):
    """A published campaign version; a key and version never change content."""

    __tablename__ = "campaigns"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The facility it belongs to (used by its subtree; facilities below see it); none: the whole group.
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class CampaignLaunch(Base):
    """A launched campaign version: a one-off run, or a Temporal schedule of recurring runs.

    `status` mirrors what the API did to it (`scheduled`, `launched`, `paused`, `cancelled`); each run's
    own progress is in `campaign_runs`."""

    __tablename__ = "campaign_launches"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    recurring: Mapped[str | None] = mapped_column(String(64))
    schedule_id: Mapped[str | None] = mapped_column(String(200))
    launched_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class CampaignRun(Base):
    """One run of a campaign (projection of its workflow): status, what it is doing, its audience."""

    __tablename__ = "campaign_runs"
    __table_args__ = (Index("ix_campaign_runs_campaign", "campaign_key", "campaign_version"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    campaign_key: Mapped[str] = mapped_column(String(64), nullable=False)
    campaign_version: Mapped[int] = mapped_column(Integer, nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(250), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    phase: Mapped[str | None] = mapped_column(Text)
    segment_key: Mapped[str] = mapped_column(String(64), nullable=False)
    segment_version: Mapped[int | None] = mapped_column(Integer)
    audience: Mapped[int | None] = mapped_column(Integer)
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignRecipient(Base):
    """A patient in a run's frozen audience, in the order the run pages through it (`ordinal`, grouped
    by time zone), with their A/B variant and what happened: `pending`, `messaged` (the message row
    says how it went), `deferred` (until `defer_until`), `suppressed`, `skipped`, `expired` or
    `cancelled`, with the guardrail rule and reason."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("run_id", "patient_id", name="uq_campaign_recipients_run_patient"),
        Index("ix_campaign_recipients_run_state", "run_id", "state"),
        Index("ix_campaign_recipients_message", "message_id"),
    )

    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    zone: Mapped[str] = mapped_column(String(64), nullable=False)
    variant: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    rule: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(64))
    defer_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
