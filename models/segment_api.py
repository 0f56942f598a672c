"""Request and response bodies of the segment endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.small_cells import REDACTED_COUNTS

COUNT_SHOWN = Field(
    default="",
    description='the count as text: the number, or "<11" when a caller without clinical:read would see '
    "a count from 1 to 10 (then `count` is null)",
)


class SegmentCreated(BaseModel):
    """A published segment version."""

    key: str
    version: int


class SegmentSummary(BaseModel):
    """The latest version of a segment."""

    key: str
    version: int
    name: str
    description: str | None = None
    facility: str | None = Field(
        default=None, description="the facility it belongs to; none: the whole group"
    )


class SegmentList(BaseModel):
    """Segments, by key."""

    items: list[SegmentSummary]


class CriterionCountView(BaseModel):
    """How many eligible patients one criterion holds for on its own, with the criterion in words."""

    path: str
    description: str
    count: int | None
    count_shown: str = COUNT_SHOWN


class SegmentPreview(BaseModel):
    """A segment evaluated at `as_of`: its size, a sample of patient ids, each criterion's count.

    Without `clinical:read` the sample is empty and small counts are suppressed (`redacted` says so)."""

    key: str
    version: int
    as_of: datetime
    count: int | None
    count_shown: str = COUNT_SHOWN
    sample: list[str]
    criteria: list[CriterionCountView]
    redacted: list[str] = []


class PatientSegments(BaseModel):
    """The segments a patient is in at `as_of`."""

    patient_id: str
    as_of: datetime
    segments: list[str]


class SegmentRefreshed(BaseModel):
    """What a refresh did: how many patients entered and left the segment, how many enrollments it
    started in segment-based journeys, and how many it told that their patient left."""

    key: str
    as_of: datetime
    entered: int | None
    exited: int | None
    enrolled: int | None
    exits_signalled: int | None
    redacted: list[str] = Field(default=[], description=REDACTED_COUNTS)


class SegmentMembers(BaseModel):
    """The patients with an open stay in the segment (as of its last refresh); without `clinical:read`,
    their count only (small counts suppressed) and no ids."""

    key: str
    members: list[str]
    count: int | None = None
    count_shown: str = COUNT_SHOWN
    redacted: list[str] = []
