"""Tables of surveys: stored Questionnaire versions, the surveys sent (one per survey step visit) and
the QuestionnaireResponses patients gave.

Imported at the end of `models/tables.py`, so they share its `Base` and migrations see them. A survey
row is a projection and an audit row: the enrollment workflow decides when it expires."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.table_base import Base, Json


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class QuestionnaireVersion(Base):
    """One version of a FHIR Questionnaire, by canonical url and version (content never changes)."""

    __tablename__ = "questionnaires"

    url: Mapped[str] = mapped_column(String(500), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str | None] = mapped_column(String(500))
    resource: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created()


class Survey(Base):
    """A survey sent to a patient by a journey step: `sent`, then `completed` or `expired`."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_questionnaire", "questionnaire_url", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    enrollment_id: Mapped[str] = mapped_column(String(64), nullable=False)
    journey_key: Mapped[str] = mapped_column(String(64), nullable=False)
    step_id: Mapped[str] = mapped_column(String(64), nullable=False)
    questionnaire_url: Mapped[str] = mapped_column(String(500), nullable=False)
    questionnaire_version: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="sent")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SurveyResponse(Base):
    """The patient's answers: a FHIR QuestionnaireResponse, and its answers by linkId for analytics
    and branch conditions. One per survey (a second submission is refused)."""

    __tablename__ = "questionnaire_responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survey_id: Mapped[str] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    resource: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    answers: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    created_at: Mapped[datetime] = _created()
