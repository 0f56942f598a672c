"""Recording a patient's answers: the QuestionnaireResponse (validated with fhir.resources) and the
survey's completion in one transaction, so a double submission or a replayed link writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir.resources import validation_problems
from aftercare.surveys.form import Parsed, plain_answers, questionnaire_response
from models.survey_tables import Survey, SurveyResponse


class AlreadyAnswered(Exception):
    """The survey has its answers already (or expired meanwhile): nothing was written."""


@dataclass(frozen=True)
class Recorded:
    """The stored response, and the data of its `survey.completed` event."""

    response_id: str
    event_data: dict[str, Any]


async def record_response(
    session: AsyncSession, survey: Survey, questionnaire: dict[str, Any], parsed: Parsed
) -> Recorded:
    """Store the answers and complete the survey; `AlreadyAnswered` when it is not open any more."""
    response_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    resource = questionnaire_response(
        questionnaire, parsed, response_id=response_id, patient_id=survey.patient_id, authored=now
    )
    problems = validation_problems(resource)
    if problems:
        raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
    closed = await session.execute(
        update(Survey)
        .where(Survey.id == survey.id, Survey.status == "sent", Survey.expires_at > now)
        .values(status="completed", completed_at=now)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyAnswered(survey.id)
    answers = plain_answers(parsed)
    session.add(
        SurveyResponse(
            id=response_id,
            survey_id=survey.id,
            patient_id=survey.patient_id,
            resource=resource,
            answers=answers,
        )
    )
    await session.flush()
    data = {
        "survey_id": survey.id,
        "questionnaire": f"{survey.questionnaire_url}|{survey.questionnaire_version}",
        "response_id": response_id,
        "answers": answers,
    }
    return Recorded(response_id, data)
