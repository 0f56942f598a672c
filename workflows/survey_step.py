"""The journey's `survey` step: open the survey, send its link, wait for `survey.completed` (matched
by survey id) until it expires; on expiry the step's `%event` is a `survey.expired` event."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.surveys import SurveyActivities
    from models.journey import SurveyStep
    from models.surveys import ExpireSurveyInput, OpenSurveyInput
    from models.temporal import PatientEvent, WriteBackInput

if TYPE_CHECKING:
    from workflows.steps import JourneySteps

COMPLETED = "survey.completed"
EXPIRED = "survey.expired"


async def run_survey(steps: JourneySteps, step: SurveyStep) -> str | None:
    """Run a survey step; the step to go to next when it expired (`on_expired`), else None."""
    spec = step.survey
    survey_id = str(workflow.uuid4())
    expires_at = workflow.now() + spec.expires
    opened = await steps._activity(
        step.id,
        SurveyActivities.open_survey,
        OpenSurveyInput(
            survey_id=survey_id,
            enrollment_id=steps.enrollment_id,
            patient_id=steps.patient_id,
            journey_key=steps.journey.key,
            step_id=step.id,
            questionnaire=spec.questionnaire,
            version=spec.version,
            expires_at=expires_at,
        ),
    )
    best = spec.channel == "best"
    await steps.send(
        channel=spec.channel,
        fallback=["sms", "email"] if best else None,
        subject=opened.subject,
        body=opened.body,
        purpose="surveys",
        step=step.id,
        name=step.name or f"Sending the survey {spec.questionnaire}",
    )
    answered = await steps.wait_for(
        COMPLETED,
        timeout=max(expires_at - workflow.now(), timedelta(seconds=1)),
        criteria=f"%event.data.survey_id = '{survey_id}'",
        step=step.id,
        name=f"Waiting for the survey's answers until {expires_at:%Y-%m-%d %H:%M} UTC",
    )
    if answered is not None:
        response_id = answered.data.get("response_id")
        if opened.write_back and isinstance(response_id, str):
            request = WriteBackInput(survey_response_id=response_id)
            await steps._start_write_back(request, f"survey-response-{response_id}")
        return None
    await steps._activity(step.id, SurveyActivities.expire_survey, ExpireSurveyInput(survey_id=survey_id))
    steps.last_event = PatientEvent(
        id=f"{EXPIRED}:{survey_id}",
        type=EXPIRED,
        data={"survey_id": survey_id, "questionnaire": spec.questionnaire},
        occurred_at=workflow.now(),
    )
    return spec.on_expired
