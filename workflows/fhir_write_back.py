"""Writing outreach back to the FHIR source, apart from the journey: the journey (or the API, when a
task is completed, or a provider's report, when a message's fate changes) starts this workflow and goes
on, and the write is retried here for as long as the server needs."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.fhir_write_back import FhirWriteBackActivities
    from activities.options import FHIR_WRITE, FHIR_WRITE_MANY
    from models.temporal import WriteBackInput, WriteBackMessageInput, WriteBackResult, WriteBackTaskInput
    from models.workflow_names import FHIR_WRITE_BACK_WORKFLOW

# Workflows started before the write paths became one scheduled `write_back_message`/`write_back_task`.
ONE_WRITE_PATH_PATCH = "fhir-write-back-one-path"


@workflow.defn(name=FHIR_WRITE_BACK_WORKFLOW)
class FhirWriteBackWorkflow:
    """One message's Communication, one planned send's CommunicationRequest, one task's Task, one
    survey's QuestionnaireResponse or one risk score's RiskAssessment as it is now; the workflow id names
    what is written (and its status, or the score's `as_of`), so each is written once."""

    @workflow.run
    async def run(self, request: WriteBackInput) -> WriteBackResult:
        """Create or update the resource."""
        workflow.set_current_details(f"Writing {_what(request)} to the FHIR source")
        result: WriteBackResult
        if workflow.patched(ONE_WRITE_PATH_PATCH):
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back,
                request,
                summary=f"Writing {_what(request)}",
                **(FHIR_WRITE_MANY if request.campaign_run_id is not None else FHIR_WRITE).options(),
            )
        elif request.message_id is not None:
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_message,
                WriteBackMessageInput(message_id=request.message_id),
                summary="Writing the Communication",
                **FHIR_WRITE.options(),
            )
        else:
            result = await workflow.execute_activity_method(
                FhirWriteBackActivities.write_back_task,
                WriteBackTaskInput(task_id=request.task_id or ""),
                summary="Writing the Task",
                **FHIR_WRITE.options(),
            )
        return result


def _what(request: WriteBackInput) -> str:
    if request.campaign_run_id is not None:
        run, first, last = request.campaign_run_id, request.first, request.last
        return f"campaign run {run}'s messages {first}-{last} (Communications)"
    if request.message_id is not None:
        return f"message {request.message_id} (a Communication)"
    if request.planned_key is not None:
        return f"planned send {request.planned_key} (a CommunicationRequest)"
    if request.survey_response_id is not None:
        return f"survey response {request.survey_response_id} (a QuestionnaireResponse)"
    if request.risk is not None:
        return f"the {request.risk.score} score of a discharge (a RiskAssessment)"
    return f"task {request.task_id} (a Task)"
