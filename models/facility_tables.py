"""Tables of facilities: the hospital group's tree, and which facilities each patient belongs to.

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them. Row-level
security over the patient tables is keyed on `patient_facilities` (see `aftercare/facilities/scope.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


class Facility(Base):
    """A hospital, clinic or practice of the group; `parent` makes the tree (the root has none)."""

    __tablename__ = "facilities"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    parent: Mapped[str | None] = mapped_column(String(64), ForeignKey("facilities.key"), index=True)
    organization: Mapped[str | None] = mapped_column(String(200), unique=True)
    location: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    country: Mapped[str | None] = mapped_column(String(2))
    subdivision: Mapped[str | None] = mapped_column(String(16))
    # The local calendar: ISO dates (`YYYY-MM-DD`) on which business-day waits do not count.
    holidays: Mapped[list[str]] = mapped_column(Json, nullable=False, server_default="[]")
    quiet_hours: Mapped[str | None] = mapped_column(String(16))  # `21:00-08:00` in the facility's zone
    # Sender identity per channel: {"sms": {"from": "+1…"}, "email": {"from", "reply_to"}, …}.
    senders: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, server_default="{}")
    help_phone: Mapped[str | None] = mapped_column(String(32))
    default_language: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # The facility's bit in `patients.facility_bits` (below 63; assigned once, never changed).
    ordinal: Mapped[int] = mapped_column(
        Integer, server_default=text("nextval('facility_ordinals')"), unique=True, nullable=False
    )


class PatientFacility(Base):
    """A patient record belongs to this facility (a patient may belong to several)."""

    __tablename__ = "patient_facilities"
    __table_args__ = (Index("ix_patient_facilities_facility", "facility", "patient_id"),)

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    facility: Mapped[str] = mapped_column(String(64), ForeignKey("facilities.key"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)  # managing_organization, default, …
    added_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
