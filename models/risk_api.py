"""API shapes of readmission risk: a patient's scores per discharge, each component explained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RiskComponentView(BaseModel):
    """One component: what was measured, its points, and the resources (`Type/id`) it came from."""

    model_config = ConfigDict(frozen=True)

    value: Any = Field(description="what was measured (days, a flag, an index, a count)")
    points: int
    basis: list[str] = Field(description="references of the resources the component came from")
    detail: dict[str, Any] | None = Field(default=None, description="e.g. the Charlson categories found")


class RiskScoreView(BaseModel):
    """A score of one discharge."""

    model_config = ConfigDict(frozen=True)

    score: str = Field(description="`lace` or `hospital`")
    value: int
    band: str = Field(description="`low`, `moderate` or `high` (bands set by RISK_BANDS)")
    as_of: datetime = Field(description="when the data the score reflects last changed it")
    encounter_id: str
    patient_id: str = Field(description="the patient record the discharge belongs to")
    discharged_at: datetime
    algorithm: str
    components: dict[str, RiskComponentView]


class PatientRisk(BaseModel):
    """Every scored discharge of the person's records, the latest first."""

    model_config = ConfigDict(frozen=True)

    patient_id: str
    scores: list[RiskScoreView]
