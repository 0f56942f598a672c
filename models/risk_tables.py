"""Tables of the post-discharge programme: readmission risk scores per discharge, and Transitional Care
Management episodes.

On `models/table_base.py`'s `Base`; `models/tables.py` imports them, so migrations see them. Both hold
patient data and are scoped by facility (`scope_table` in their migration).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


class RiskScore(Base):
    """A score (`lace`, `hospital`) of one discharge: its value and components (points and the resources
    each came from), the algorithm that made it, and `as_of`, when the data it reflects last changed it."""

    __tablename__ = "risk_scores"
    __table_args__ = (Index("ix_risk_scores_patient_discharged", "patient_id", "discharged_at"),)

    encounter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[str] = mapped_column(String(16), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[int] = mapped_column(Integer, nullable=False)
    components: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    algorithm: Mapped[str] = mapped_column(String(64), nullable=False)
    discharged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    as_of: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class TcmEpisode(Base):
    """A Transitional Care Management episode, opened by a discharge, with its deadlines: contact by the
    end of the second business day after the discharge day, a visit within 7 days (`complexity` high) or
    14 (moderate). What happened (attempts, contact, visit, medication reconciliation, readmission) is
    read from tasks, replies and clinical facts (`aftercare/tcm/progress.py`), so it is never stale."""

    __tablename__ = "tcm_episodes"
    __table_args__ = (
        Index("ix_tcm_episodes_status_contact_due", "status", "contact_due_at"),
        Index("ix_tcm_episodes_patient_id", "patient_id"),
        Index("ix_tcm_episodes_discharged_at", "discharged_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    encounter_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    facility: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    discharged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    contact_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    visit_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    complexity: Mapped[str] = mapped_column(String(16), nullable=False)
    complexity_source: Mapped[str] = mapped_column(String(16), nullable=False, server_default="risk")
    risk_band: Mapped[str | None] = mapped_column(String(16))
    # `open`, or `closed` by staff; readmission and the end of the 30 days are read from the data.
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
