"""Surveys: the journey's `survey` step, the activities that open and expire a survey, and the API's
view of stored FHIR Questionnaires."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.base import DefinitionModel, TemporalModel
from models.durations import IsoDuration

CanonicalUrl = Annotated[str, StringConstraints(pattern=r"^(https?|urn):\S+$", max_length=500)]
SurveyChannel = Literal["sms", "email", "best"]


class SurveySpec(DefinitionModel):
    """Send a link to a Questionnaire (its canonical `url`, the newest active version unless
    `version`), then wait for the answers until `expires`; on expiry go to `on_expired` (or carry on)."""

    questionnaire: CanonicalUrl
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    expires: IsoDuration = timedelta(days=7)
    channel: SurveyChannel = "best"
    on_expired: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)] | None
    ) = None


class OpenSurveyInput(TemporalModel):
    """Open a survey for one step visit: record it and make its link."""

    survey_id: str
    enrollment_id: str
    patient_id: str
    journey_key: str
    step_id: str
    questionnaire: str
    version: str | None = None
    expires_at: datetime


class OpenSurveyResult(TemporalModel):
    """The message that carries the survey's link (in the patient's language), and whether this
    worker writes the answers back to the FHIR source."""

    survey_id: str
    questionnaire_version: str
    subject: str
    body: str
    write_back: bool = False


class ExpireSurveyInput(TemporalModel):
    """Mark a survey expired (the workflow's deadline passed with no answers)."""

    survey_id: str


class QuestionnaireSaved(BaseModel):
    """`POST /v1/questionnaires`: the canonical url and version stored (`created` false when the same
    content was there already)."""

    url: str
    version: str
    status: str
    created: bool


class QuestionnaireImport(BaseModel):
    """`POST /v1/questionnaires/import`: read `Questionnaire/{id}` from a FHIR source (the default one,
    `FHIR_BASE_URL`, unless `source` names a registered one) and store it."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
    source: Annotated[str, StringConstraints(max_length=64)] | None = None


class QuestionnaireSummary(BaseModel):
    """A stored Questionnaire version."""

    url: str
    version: str
    status: str
    title: str | None
    items: int
    created_at: datetime


class QuestionnaireList(BaseModel):
    """Stored Questionnaires, newest version of each url first (`?all_versions=true` for every one)."""

    items: list[QuestionnaireSummary] = Field(default_factory=list)


class SurveyResults(BaseModel):
    """Response rate and answer distributions of one Questionnaire's surveys."""

    questionnaire: str
    sent: int
    completed: int
    expired: int
    response_rate: float | None
    questions: list[dict[str, object]]
