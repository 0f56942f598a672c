"""Tables of segments (contract §5): published definitions and dynamic membership.

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


class Segment(Base):
    """A published segment version; a key and version never change content."""

    __tablename__ = "segments"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # The event types that refresh the segment for one patient (from the definition, for lookups).
    refresh_on: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False, server_default="{}")
    # The facility it belongs to (used by its subtree; facilities below see it); none: the whole group.
    facility: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class SegmentMembership(Base):
    """A stay of a patient in a segment: from `entered_at` until `exited_at` (open while a member).

    At most one open stay per segment and patient (a partial unique index)."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index(
            "ux_segment_memberships_open",
            "segment_key",
            "patient_id",
            unique=True,
            postgresql_where=text("exited_at IS NULL"),
        ),
        Index("ix_segment_memberships_patient", "patient_id", "segment_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment_key: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    segment_version: Mapped[int] = mapped_column(Integer, nullable=False)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SegmentRefresh(Base):
    """The last scheduled refresh of a segment: when, at which version, and what it found (the schedule
    uses `refreshed_at` to honour a segment's `refresh_every`)."""

    __tablename__ = "segment_refreshes"

    segment_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment_version: Mapped[int] = mapped_column(Integer, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    members: Mapped[int] = mapped_column(Integer, nullable=False)
    entered: Mapped[int] = mapped_column(Integer, nullable=False)
    exited: Mapped[int] = mapped_column(Integer, nullable=False)
