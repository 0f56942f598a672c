"""Writing outreach back to the FHIR source, apart from the journey: the journey (or the API, when a
task is completed) starts this workflow and goes on, and the write is retried here for as long as the
server needs."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.fhir_write_back import FhirWriteBackActivities
    from activities.options import FHIR_WRITE
    from models.surveys import WriteBackSurveyResponseInput
    from models.temporal import WriteBackInput, WriteBackMessageInput, WriteBackResult, WriteBackTaskInput
    from models.workflow_names import FHIR_WRITE_BACK_WORKFLOW


@workflow.defn(name=FHIR_WRITE_BACK_WORKFLOW)
class FhirWriteBackWorkflow:
    """One message's Communication, one task's Task or one risk score's RiskAssessment as it is now; the
    workflow id names what is written (and the task's status, the score's `as_of`), so each is written
    once."""

    @workflow.run
    async def run(self, request: WriteBackInput) -> WriteBackResult:
        """Create or update the resource."""
        result: WriteBackResult
        if request.message_id is not None:
            workflow.set_current_details(f"Writing message {request.message_id} to the FHIR source")
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_message,
                WriteBackMessageInput(message_id=request.message_id),
                summary="Writing the Communication",
                **FHIR_WRITE.options(),
            )
            return result
        if request.task_id is not None:
            workflow.set_current_details(f"Writing task {request.task_id} to the FHIR source")
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_task,
                WriteBackTaskInput(task_id=request.task_id),
                summary="Writing the Task",
                **FHIR_WRITE.options(),
            )
            return result
        if request.survey_response_id is not None:
            workflow.set_current_details(
                f"Writing survey response {request.survey_response_id} to the FHIR source"
            )
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_survey_response,
                WriteBackSurveyResponseInput(survey_response_id=request.survey_response_id),
                summary="Writing the QuestionnaireResponse",
                **FHIR_WRITE.options(),
            )
            return result
        if request.risk is not None:
            workflow.set_current_details(
                f"Writing the {request.risk.score} score of a discharge to the FHIR source"
            )
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_risk,
                request.risk,
                summary="Writing the RiskAssessment",
                **FHIR_WRITE.options(),
            )
            return result
        raise ApplicationError("nothing to write back", type="InvalidInput", non_retryable=True)
