"""Survey activities: open a survey for a journey step (record it, make its signed link and the
message that carries it, in the patient's language) and mark it expired when its deadline passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from aftercare.guardrails.facts import PREFERRED_LANGUAGE_ATTRIBUTE
from aftercare.patient_links.catalogue import translate
from aftercare.patient_links.tokens import PatientLinks
from aftercare.store.attributes import attribute_of
from aftercare.surveys.questionnaires import QuestionnaireError, usable_questionnaire
from models.survey_tables import Survey
from models.surveys import ExpireSurveyInput, OpenSurveyInput, OpenSurveyResult
from models.tables import Patient

SURVEY_PURPOSE = "surveys"


class SurveyActivities:
    """Opens and expires surveys."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], links: PatientLinks, *, write_back: bool = False
    ) -> None:
        self._sessions = sessions
        self._links = links
        self._write_back = write_back

    @activity.defn(name="open_survey")
    async def open_survey(self, request: OpenSurveyInput) -> OpenSurveyResult:
        """Record the survey (once per id) and make the message carrying its link; an unknown or
        retired Questionnaire fails the step."""
        async with self._sessions.begin() as session:
            survey = await session.get(Survey, request.survey_id)
            if survey is None:
                try:
                    questionnaire = await usable_questionnaire(
                        session, request.questionnaire, request.version
                    )
                except QuestionnaireError as error:
                    raise ApplicationError(
                        str(error), type="QuestionnaireUnavailable", non_retryable=True
                    ) from error
                survey = Survey(
                    id=request.survey_id,
                    patient_id=request.patient_id,
                    enrollment_id=request.enrollment_id,
                    journey_key=request.journey_key,
                    step_id=request.step_id,
                    questionnaire_url=questionnaire.url,
                    questionnaire_version=questionnaire.version,
                    expires_at=request.expires_at,
                )
                session.add(survey)
            language = await _language(session, request.patient_id)
        ttl = max(request.expires_at - datetime.now(UTC), timedelta(minutes=1))
        url = self._links.url("survey", request.patient_id, SURVEY_PURPOSE, ref=request.survey_id, ttl=ttl)
        return OpenSurveyResult(
            survey_id=request.survey_id,
            questionnaire_version=survey.questionnaire_version,
            subject=translate(language, "survey.subject"),
            body=translate(language, "survey.message", url=url),
            write_back=self._write_back,
        )

    @activity.defn(name="expire_survey")
    async def expire_survey(self, request: ExpireSurveyInput) -> None:
        """Mark a survey that got no answers by its deadline `expired`."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Survey)
                .where(Survey.id == request.survey_id, Survey.status == "sent")
                .values(status="expired")
            )


async def _language(session: AsyncSession, patient_id: str) -> str:
    preferred = await attribute_of(session, patient_id, PREFERRED_LANGUAGE_ATTRIBUTE)
    if isinstance(preferred, str):
        return preferred
    patient = await session.get(Patient, patient_id)
    return (patient.language if patient else None) or "en"
