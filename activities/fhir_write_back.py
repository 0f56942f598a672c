"""Writing outreach back to the FHIR source: each message as a `Communication`, each care task as a
`Task`, each readmission risk score as a `RiskAssessment`, in the patient's chart.

Each is written by a conditional update on its identifier (`PUT Communication?identifier=
urn:aftercare:message|<id>`, `urn:aftercare:task|<id>` for tasks): the first write creates it, and a
retried or repeated one updates the same resource rather than adding another. The identifier also tells
Aftercare which task an EHR completed.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.fhir import retryable_or_not
from aftercare.fhir.outreach import CareTask, SentMessage, communication, fhir_task, triggering_reference
from aftercare.fhir.resources import validation_problems
from aftercare.fhir.risk_assessment import ScoredDischarge, risk_assessment
from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirClientError
from aftercare.fhir_sync.sources import DEFAULT_SOURCE, SourceMissingError, open_client
from aftercare.risk.scores import ordered_components
from aftercare.settings import Settings
from models.risk_tables import RiskScore
from models.survey_tables import SurveyResponse
from models.surveys import WriteBackSurveyResponseInput
from models.tables import Enrollment, Journey, Message, Task
from models.temporal import WriteBackMessageInput, WriteBackResult, WriteBackRiskInput, WriteBackTaskInput

log = logging.getLogger(__name__)
_REMINDER_PURPOSES = frozenset({"appointment_reminders"})


class FhirWriteBackActivities:
    """Writes what Aftercare did to the default FHIR source."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn(name="write_back_message")
    async def write_back_message(self, request: WriteBackMessageInput) -> WriteBackResult:
        """Create or update the message's Communication on the FHIR source."""
        async with self._sessions() as session:
            message = await session.get(Message, request.message_id)
            if message is None:
                reason = f"message {request.message_id} is not recorded"
                raise ApplicationError(reason, type="MessageNotFound", non_retryable=True)
            resource = communication(await _sent_message(session, message))
            client = await self._open(session)
        return await self._put(client, resource)

    @activity.defn(name="write_back_task")
    async def write_back_task(self, request: WriteBackTaskInput) -> WriteBackResult:
        """Create or update the care task's Task on the FHIR source, with its status now."""
        async with self._sessions() as session:
            task = await session.get(Task, request.task_id)
            if task is None:
                reason = f"task {request.task_id} is not recorded"
                raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
            focus = await _triggering_reference(session, task.enrollment_id)
            resource = fhir_task(
                CareTask(
                    task_id=task.id,
                    patient_id=task.patient_id,
                    queue=task.queue,
                    status=task.status,
                    priority=task.priority,
                    title=task.title,
                    created_at=task.created_at,
                    due_at=task.due_at,
                    completed_at=task.completed_at,
                    outcome=task.outcome,
                    focus=focus,
                )
            )
            client = await self._open(session)
        return await self._put(client, resource)

    @activity.defn(name="write_back_survey_response")
    async def write_back_survey_response(self, request: WriteBackSurveyResponseInput) -> WriteBackResult:
        """Create or update the survey's QuestionnaireResponse on the FHIR source."""
        async with self._sessions() as session:
            response = await session.get(SurveyResponse, request.survey_response_id)
            if response is None:
                reason = f"survey response {request.survey_response_id} is not recorded"
                raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
            resource = {key: value for key, value in response.resource.items() if key != "id"}
            client = await self._open(session)
        return await self._put(client, resource)

    @activity.defn(name="write_back_risk")
    async def write_back_risk(self, request: WriteBackRiskInput) -> WriteBackResult:
        """Create or update the RiskAssessment of one score of one discharge, as it is now."""
        async with self._sessions() as session:
            row = await session.get(RiskScore, (request.encounter_id, request.score))
            if row is None:
                reason = f"no {request.score} score of encounter {request.encounter_id}"
                raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
            resource = risk_assessment(
                ScoredDischarge(
                    patient_id=row.patient_id,
                    encounter_id=row.encounter_id,
                    score=row.score,
                    value=row.value,
                    band=self._settings.bands[row.score].band(row.value),
                    as_of=row.as_of,
                    components=ordered_components(row.score, row.components),
                )
            )
            client = await self._open(session)
        return await self._put(client, resource)

    async def _open(self, session: AsyncSession) -> FhirClient:
        try:
            return await open_client(session, self._settings, DEFAULT_SOURCE)
        except SourceMissingError as error:
            raise ApplicationError(str(error), type="FhirSourceMissing", non_retryable=True) from error

    async def _put(self, client: FhirClient, resource: dict[str, Any]) -> WriteBackResult:
        """A conditional update on the resource's identifier: a second write updates, never duplicates."""
        problems = validation_problems(resource)
        if problems:
            raise ApplicationError(
                f"the {resource['resourceType']} would not be valid: {problems[0][0]}: {problems[0][1]}",
                type="InvalidInput",
                non_retryable=True,
            )
        try:
            async with client:
                identifier = resource["identifier"]
                if isinstance(identifier, list):  # a QuestionnaireResponse has one, not a list
                    [identifier] = identifier
                search = {"identifier": f"{identifier['system']}|{identifier['value']}"}
                written = await client.update_where(resource, search)
        except FhirClientError as error:
            raise retryable_or_not(error) from error
        reference = f"{resource['resourceType']}/{written.get('id')}"
        log.info("wrote back", extra={"reference": reference, "status": resource["status"]})
        return WriteBackResult(reference=reference, status=resource["status"])


async def _triggering_reference(session: AsyncSession, enrollment_id: str | None) -> str | None:
    enrollment = await session.get(Enrollment, enrollment_id) if enrollment_id else None
    return triggering_reference(enrollment.trigger_key) if enrollment is not None else None


async def _sent_message(session: AsyncSession, message: Message) -> SentMessage:
    about = topic = None
    if message.enrollment_id:
        enrollment = await session.get(Enrollment, message.enrollment_id)
        if enrollment is not None:
            about = triggering_reference(enrollment.trigger_key)
            journey = await session.get(Journey, (enrollment.journey_key, enrollment.journey_version))
            topic = journey.name if journey is not None else enrollment.journey_key
    return SentMessage(
        message_id=message.id,
        patient_id=message.patient_id,
        channel=message.channel,
        status=message.status,
        body=message.body,
        sent_at=message.sent_at,
        reason=message.reason,
        topic=topic,
        about=about,
        reminder=message.purpose in _REMINDER_PURPOSES,
    )
