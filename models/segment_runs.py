"""Inputs and results of the segment refresh workflow and activity."""

from __future__ import annotations

from datetime import datetime

from models.base import TemporalModel


class RefreshSegmentsInput(TemporalModel):
    """Refresh one segment (`key`) or every one that is due, at `as_of` (default: when the activity
    runs); for one patient only when `patient_id` is given (an event the segment refreshes on)."""

    key: str | None = None
    as_of: datetime | None = None
    patient_id: str | None = None


class SegmentRefreshSummary(TemporalModel):
    """What one segment's refresh did."""

    key: str
    entered: int
    exited: int
    enrolled: int
    exits_signalled: int


class RefreshSegmentsResult(TemporalModel):
    """Every segment refreshed."""

    segments: list[SegmentRefreshSummary]
