"""Writing outreach back to the FHIR source: each message as a `Communication`, each send planned for
later as a `CommunicationRequest`, each care task as a `Task`, each survey's answers as a
`QuestionnaireResponse` and each readmission risk score as a `RiskAssessment`, in the patient's chart.

There is one write path: read what is to be written as it is now (a short database read), build its
resource, check it against R4, and write it by a conditional update on its identifier (`PUT
Communication?identifier=urn:aftercare:message|<id>`; `urn:aftercare:send|<key>` for planned sends,
`urn:aftercare:task|<id>` for tasks, and so on): the first write creates it, and a retried, repeated or
later one updates the same resource rather than adding another. Because each write reads the current
state, writes that arrive out of order still leave the chart with the latest. The identifier also
tells Aftercare which task an EHR completed or cancelled.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.fhir import retryable_or_not
from activities.messaging.campaign_batch import idempotency_key as campaign_key
from aftercare.campaigns.audience import RECIPIENTS
from aftercare.fhir.outreach import (
    CareTask,
    PlannedSend,
    SentMessage,
    communication,
    communication_request,
    fhir_task,
    triggering_reference,
)
from aftercare.fhir.resources import validation_problems
from aftercare.fhir.risk_assessment import ScoredDischarge, risk_assessment
from aftercare.fhir_client.errors import FhirClientError
from aftercare.fhir_sync.sources import DEFAULT_SOURCE, SourceMissingError, open_client
from aftercare.risk.scores import ordered_components
from aftercare.settings import Settings
from models.campaign_tables import Campaign, CampaignRun
from models.risk_tables import RiskScore
from models.survey_tables import SurveyResponse
from models.tables import Enrollment, Journey, Message, SendDecision, Task
from models.temporal import WriteBackInput, WriteBackMessageInput, WriteBackResult, WriteBackTaskInput

log = logging.getLogger(__name__)
_REMINDER_PURPOSES = frozenset({"appointment_reminders"})
# A planned send that ended without a message (the enrollment ended while it waited).
_ENDED = "the journey ended before the send was due"


class FhirWriteBackActivities:
    """Writes what Aftercare did to the default FHIR source."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn(name="write_back")
    async def write_back(self, request: WriteBackInput) -> WriteBackResult:
        """Create or update the resource of a message, a planned send, a care task, a survey's answers or
        a risk score, as it is now."""
        async with self._sessions() as session:
            resources = await _resources(session, request, self._settings)
            try:
                client = await open_client(session, self._settings, DEFAULT_SOURCE)
            except SourceMissingError as error:
                raise ApplicationError(str(error), type="FhirSourceMissing", non_retryable=True) from error
        for resource in resources:
            problems = validation_problems(resource)
            if problems:
                raise ApplicationError(
                    f"the {resource['resourceType']} would not be valid: {problems[0][0]}: {problems[0][1]}",
                    type="InvalidInput",
                    non_retryable=True,
                )
        result = WriteBackResult(written=0)
        async with client:
            for resource in resources:
                identifier = resource["identifier"]
                if isinstance(identifier, list):  # a QuestionnaireResponse has one, not a list
                    [identifier] = identifier
                try:
                    search = {"identifier": f"{identifier['system']}|{identifier['value']}"}
                    written = await client.update_where(resource, search)
                except FhirClientError as error:
                    raise retryable_or_not(error) from error
                reference = f"{resource['resourceType']}/{written.get('id')}"
                log.info("wrote back", extra={"reference": reference, "status": resource["status"]})
                if activity.in_activity():
                    activity.heartbeat(result.written)
                result = WriteBackResult(
                    reference=reference, status=resource["status"], written=result.written + 1
                )
        return result

    # The activity names of workflows started before the write paths became one (their histories
    # schedule these): each is the one path.

    @activity.defn(name="write_back_message")
    async def write_back_message(self, request: WriteBackMessageInput) -> WriteBackResult:
        """Create or update the message's Communication (see `write_back`)."""
        return await self.write_back(WriteBackInput(message_id=request.message_id))

    @activity.defn(name="write_back_task")
    async def write_back_task(self, request: WriteBackTaskInput) -> WriteBackResult:
        """Create or update the care task's Task (see `write_back`)."""
        return await self.write_back(WriteBackInput(task_id=request.task_id))


async def _resources(
    session: AsyncSession, request: WriteBackInput, settings: Settings
) -> list[dict[str, Any]]:
    """What to write: for a campaign range, each recipient's CommunicationRequest when their send was
    deferred to a known moment, and each message's Communication; else the one resource."""
    if request.campaign_run_id is None:
        return [await _resource(session, request, settings)]
    recipients = await session.execute(
        select(RECIPIENTS.c.patient_id, Message)
        .outerjoin(Message, RECIPIENTS.c.message_id == Message.id)
        .where(
            RECIPIENTS.c.run_id == request.campaign_run_id,
            RECIPIENTS.c.ordinal.between(request.first or 0, request.last or 0),
        )
        .order_by(RECIPIENTS.c.ordinal)
    )
    resources = []
    for patient_id, message in recipients.all():
        key = campaign_key(request.campaign_run_id, patient_id)
        if await _deferral(session, key) is not None:
            resources.append(communication_request(await _planned_send(session, key, revoked=False)))
        if message is not None and message.status not in ("pending", "sending"):
            resources.append(communication(await _sent_message(session, message)))
    return resources


async def _resource(session: AsyncSession, request: WriteBackInput, settings: Settings) -> dict[str, Any]:
    if request.message_id is not None:
        message = await session.get(Message, request.message_id)
        if message is None:
            reason = f"message {request.message_id} is not recorded"
            raise ApplicationError(reason, type="MessageNotFound", non_retryable=True)
        return communication(await _sent_message(session, message))
    if request.planned_key is not None:
        return communication_request(await _planned_send(session, request.planned_key, request.revoked))
    if request.task_id is not None:
        task = await session.get(Task, request.task_id)
        if task is None:
            raise ApplicationError(
                f"task {request.task_id} is not recorded", type="InvalidInput", non_retryable=True
            )
        return fhir_task(await _care_task(session, task))
    if request.survey_response_id is not None:
        response = await session.get(SurveyResponse, request.survey_response_id)
        if response is None:
            reason = f"survey response {request.survey_response_id} is not recorded"
            raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
        return {key: value for key, value in response.resource.items() if key != "id"}
    if request.risk is not None:
        row = await session.get(RiskScore, (request.risk.encounter_id, request.risk.score))
        if row is None:
            reason = f"no {request.risk.score} score of encounter {request.risk.encounter_id}"
            raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
        return risk_assessment(
            ScoredDischarge(
                patient_id=row.patient_id,
                encounter_id=row.encounter_id,
                score=row.score,
                value=row.value,
                band=settings.bands[row.score].band(row.value),
                as_of=row.as_of,
                components=ordered_components(row.score, row.components),
            )
        )
    raise ApplicationError("nothing to write back", type="InvalidInput", non_retryable=True)


async def _journey_context(session: AsyncSession, enrollment_id: str | None) -> tuple[str | None, str | None]:
    """The resource that triggered the enrollment (`about`) and its journey's name (`topic`)."""
    enrollment = await session.get(Enrollment, enrollment_id) if enrollment_id else None
    if enrollment is None:
        return None, None
    journey = await session.get(Journey, (enrollment.journey_key, enrollment.journey_version))
    topic = journey.name if journey is not None else enrollment.journey_key
    return triggering_reference(enrollment.trigger_key), topic


async def _deferral(session: AsyncSession, key: str) -> SendDecision | None:
    """The latest deferral of a send to a known moment: the send was planned (a CommunicationRequest)."""
    found: SendDecision | None = await session.scalar(
        select(SendDecision)
        .where(SendDecision.idempotency_key == key, SendDecision.defer_until.is_not(None))
        .order_by(SendDecision.id.desc())
        .limit(1)
    )
    return found


async def _campaign_name(session: AsyncSession, run_id: str | None) -> str | None:
    """The name of the campaign a run belongs to (a campaign message's `topic`)."""
    run = await session.get(CampaignRun, run_id) if run_id else None
    campaign = await session.get(Campaign, (run.campaign_key, run.campaign_version)) if run else None
    return campaign.name if campaign is not None else None


async def _sent_message(session: AsyncSession, message: Message) -> SentMessage:
    about, topic = await _journey_context(session, message.enrollment_id)
    topic = topic or await _campaign_name(session, message.campaign_run_id)
    planned = await _deferral(session, message.idempotency_key)
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
        planned_key=message.idempotency_key if planned is not None else None,
    )


async def _planned_send(session: AsyncSession, key: str, revoked: bool) -> PlannedSend:
    """A planned send as it is now: `completed` once its message went out, `revoked` when it was held
    back at its time or called off (the enrollment ended), else `active` until its latest deferral."""
    deferral = await _deferral(session, key)
    if deferral is None:
        raise ApplicationError(f"no send was planned as {key}", type="InvalidInput", non_retryable=True)
    about, topic = await _journey_context(session, deferral.enrollment_id)
    message = await session.scalar(select(Message).where(Message.idempotency_key == key))
    if deferral.enrollment_id is None and key.startswith("campaign:"):
        topic = await _campaign_name(session, key.removeprefix("campaign:").rpartition(":")[0])
    enrollment = await session.get(Enrollment, deferral.enrollment_id) if deferral.enrollment_id else None
    status, reason = "active", None
    if message is not None and message.status == "skipped":
        status, reason = "revoked", message.reason
    elif message is not None:
        status = "completed"
    elif revoked or (enrollment is not None and enrollment.status != "running"):
        status, reason = "revoked", _ENDED
    return PlannedSend(
        key=key,
        patient_id=deferral.patient_id,
        status=status,
        channel=message.channel if message is not None else deferral.channel,
        occurrence=deferral.defer_until,
        reason=reason,
        topic=topic,
        about=about,
        reminder=deferral.purpose in _REMINDER_PURPOSES,
    )


async def _care_task(session: AsyncSession, task: Task) -> CareTask:
    about, _topic = await _journey_context(session, task.enrollment_id)
    return CareTask(
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
        focus=about,
    )
