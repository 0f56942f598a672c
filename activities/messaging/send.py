"""The send activity: compose, record the intent, then call the provider; never the same send twice.

The intent row is keyed by enrollment, step and visit. For a provider with no external side effect
(the outbox) the intent and its outcome are one transaction. For an external provider the intent is
committed before the provider is called and marked `sending` while it is out; a retry or a replacement
worker finds the row, returns a finished message as it is, and looks an interrupted one up at the
provider before anything is sent again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging.delivery import FINAL_STATUSES, Delivery, result_of
from activities.messaging.first_read import FirstRead, first_read
from activities.messaging.intent import IntentOrigin, message_intent, send_context, settle_locally
from activities.messaging.providers import (
    ProviderRegistry,
)
from aftercare.compose import ComposedMessage, TemplateNotFoundError, compose_with_facts, plan_for
from aftercare.events.attachments import RegistrationUnknown, registration_attachments
from aftercare.guardrails import Decision, GuardrailPolicy, decide
from aftercare.guardrails.decide import patient_today
from aftercare.guardrails.facts import PatientFacts
from aftercare.journey_variables import JourneyVariables, PatientNotFoundError, load_journey_variables
from aftercare.metrics import MESSAGES
from aftercare.patient_links.tokens import PatientLinks
from aftercare.patient_links.unsubscribe import note_no_opt_out
from aftercare.store.decisions import record_decision
from aftercare.store.enrollments import record_progress
from aftercare.store.messages import record_intent_and_decision
from aftercare.store.templates import book_of_versions
from aftercare.templating import TemplateRenderError
from aftercare.voice.intent import record_call_script
from models.journey import DEFAULT_PURPOSE
from models.tables import Message
from models.temporal import (
    DeliverMessageInput,
    SendMessageInput,
    SendMessageResult,
    StepRecord,
)

log = logging.getLogger(__name__)


class MessagingActivities:
    """Sends messages through the provider registered for each channel."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: ProviderRegistry,
        hospital_timezone: str = "UTC",
        guardrails: GuardrailPolicy | None = None,
        *,
        write_back: bool = False,
        links: PatientLinks | None = None,
        event_link_secret: bytes = b"",
        organiser_email: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._links = links
        self._event_link_secret = event_link_secret
        self._organiser_email = organiser_email
        self._write_back = write_back
        self._providers = providers
        self._delivery = Delivery(sessions, providers)
        self._hospital_timezone = hospital_timezone
        # Without a policy only the rules that need no configuration apply (no quiet hours, no caps).
        self._guardrails = guardrails or GuardrailPolicy(hospital_timezone=hospital_timezone)

    @activity.defn(name="send_message")
    async def send_message(self, request: SendMessageInput) -> SendMessageResult:
        """Send one step's message at most once, if the guardrails allow it now."""
        return self._marked(await self._send(request))

    @activity.defn(name="deliver_message")
    async def deliver_message(self, request: DeliverMessageInput) -> SendMessageResult:
        """Send a recorded message through its provider (on the provider's rate-limited task queue)."""
        async with self._sessions() as session:
            message = await session.get(Message, request.message_id)
        if message is None:
            raise ApplicationError(
                f"message {request.message_id} is not recorded", type="MessageNotFound", non_retryable=True
            )
        return self._marked(await self._delivery.deliver(message))

    def _marked(self, result: SendMessageResult) -> SendMessageResult:
        """A message with its fate settled goes to the chart when this worker writes outreach back, and
        so does a send deferred to a known moment (a planned send)."""
        settled = result.message_id is not None and result.deliver_queue is None
        settled = settled and result.status != "deferred"
        planned = result.status == "deferred" and result.defer_until is not None
        return (
            result.model_copy(update={"write_back": True})
            if self._write_back and (settled or planned)
            else result
        )

    async def _send(self, request: SendMessageInput) -> SendMessageResult:
        async with self._sessions.begin() as session:
            call = request.call
            read = await first_read(
                session, call.idempotency_key, call.scope.patient_id, request.send.template
            )
            if read.earlier is not None:
                message = read.earlier
                projected = await _close(session, request, message)
            else:
                now = datetime.now(UTC)
                at = max(request.due_at, now) if request.due_at else now
                variables, composed, facts = await self._compose(session, request, at, read)
                profile, voice = variables.profile, read.voice
                purpose = request.send.purpose or composed.purpose or request.purpose or DEFAULT_PURPOSE
                context = send_context(
                    profile,
                    composed,
                    purpose,
                    urgent=request.send.urgent,
                    over_cap=request.over_cap,
                    now=at,
                    voice=voice,
                )
                decision = await decide(session, self._guardrails, context, facts)
                decision = note_no_opt_out(decision, composed.channel, composed.care_critical)
                if decision.outcome == "defer":
                    logged = _decision_values(request, decision, purpose, composed.channel)
                    await record_decision(session, **logged)
                    _log_decision(request, decision, None)
                    return SendMessageResult(
                        status="deferred",
                        reason=decision.reason,
                        channel=composed.channel,
                        rule=decision.rule,
                        defer_until=decision.until,
                    )
                values = message_intent(_origin(request), composed, purpose, decision, voice, self._links)
                if request.send.attach:
                    values["attachments"] = await self._attachments(session, request)
                provider = self._providers.for_channel(composed.channel)
                sent_now = await settle_locally(values, provider)
                # The decision is logged with the intent, in its statement, when the intent is new.
                logged = _decision_values(request, decision, purpose, composed.channel)
                message, new = await record_intent_and_decision(session, values, logged, sent_now=sent_now)
                if new:
                    if message.channel == "voice" and message.status != "skipped":
                        await _record_call(session, message, request, variables)
                    _log_decision(request, decision, message.id)
                    if message.status != "pending":
                        _log_outcome(message, provider.name)
                projected = await _close(session, request, message)
        if message.status in FINAL_STATUSES:
            return result_of(message).model_copy(update={"projected": projected})
        limit = self._providers.rate_limit(self._providers.for_channel(message.channel))
        if limit is not None:
            return result_of(message).model_copy(update={"deliver_queue": limit.queue})
        return await self._delivery.deliver(message)

    async def _attachments(self, session: AsyncSession, request: SendMessageInput) -> list[dict[str, str]]:
        """The files the step attaches, for the registration of the event the journey heard of."""
        scope = request.call.scope
        heard = scope.event or scope.trigger.event
        registration_id = heard.data.get("registration_id") if heard is not None else None
        if not isinstance(registration_id, str):
            reason = "`attach` needs an event.* event with a registration_id (entry or wait_for)"
            raise ApplicationError(reason, type="InvalidInput", non_retryable=True)
        try:
            return await registration_attachments(
                session,
                registration_id,
                request.send.attach,
                secret=self._event_link_secret,
                organiser_email=self._organiser_email,
            )
        except RegistrationUnknown as error:
            raise ApplicationError(str(error), type="InvalidInput", non_retryable=True) from error

    async def _compose(
        self, session: AsyncSession, request: SendMessageInput, at: datetime, read: FirstRead
    ) -> tuple[JourneyVariables, ComposedMessage, PatientFacts]:
        """The patient's variables (with their `patient` profile, read already), the message to record
        and the patient's facts; a failure to compose is permanent."""
        try:
            template = request.send.template
            plan = plan_for(request.send, await book_of_versions(session, template, read.template_versions))
            # A call's script sees every variable; a text only what it names.
            every = request.script is not None or "voice" in plan.available
            variables = await load_journey_variables(
                session,
                request.call.scope,
                journey_key=request.call.journey_key,
                step_id=request.call.step_id,
                with_patient_resource=False,
                with_attributes=False,
                with_fetched=False,
                with_trigger=every or plan.mentions("trigger"),
                with_risk=every or plan.mentions("risk"),
                with_tcm=every or plan.mentions("tcm"),
                hospital_timezone=self._hospital_timezone,
                profile=read.patient,
            )
            composed, facts = await compose_with_facts(
                session,
                request.send,
                variables,
                minor_age=self._guardrails.minor_age,
                today=patient_today(self._guardrails, variables.profile, at),
                plan=plan,
            )
            return variables, composed, facts
        except (PatientNotFoundError, TemplateNotFoundError, TemplateRenderError) as error:
            raise permanent_compose_error(error) from error


def permanent_compose_error(error: Exception) -> ApplicationError:
    """A message that cannot be composed (no patient, no template, a render error), as the permanent
    activity failure that fails the step with a clear reason."""
    kind = {
        PatientNotFoundError: "PatientNotFound",
        TemplateNotFoundError: "TemplateNotFound",
        TemplateRenderError: "TemplateRenderError",
    }.get(type(error), "InvalidInput")
    message = f"the message could not be rendered: {error}" if kind == "TemplateRenderError" else str(error)
    return ApplicationError(message, type=kind, non_retryable=True)


async def _record_call(
    session: AsyncSession, message: Message, request: SendMessageInput, variables: JourneyVariables
) -> None:
    """A call's script beside its message (a script that fails to render fails the send for good)."""
    try:
        await record_call_script(session, message, request.script, variables.template_variables())
    except TemplateRenderError as error:
        raise permanent_compose_error(error) from error


async def _close(session: AsyncSession, request: SendMessageInput, message: Message) -> bool:
    """The journey's closing projection with its last send's outcome, in the transaction that
    recorded the message, once the message's fate is settled; True when written."""
    closing = request.closing
    if closing is None or message.status not in FINAL_STATUSES:
        return False
    step, at = request.call.step_id, datetime.now(UTC)
    record = StepRecord(seq=closing.seq, step=step, at=at, result=message.status, detail=message.reason)
    progress = closing.progress
    # No enrollment row (never allocated, or erased): the send stands, and the journey projects its end
    # itself, as it did before sends wrote it.
    records = [*progress.records, record]
    return await record_progress(session, progress.model_copy(update={"records": records}))


def _origin(request: SendMessageInput) -> IntentOrigin:
    call = request.call
    return IntentOrigin(
        idempotency_key=call.idempotency_key,
        patient_id=call.scope.patient_id,
        enrollment_id=call.scope.enrollment_id,
        journey_key=call.journey_key,
        step_id=call.step_id,
    )


def _log_outcome(message: Message, provider: str) -> None:
    log.info("message %s", message.status, extra={"message_id": message.id, "provider": provider})
    MESSAGES.labels(message.channel, provider, message.status).inc()


def _decision_values(
    request: SendMessageInput, decision: Decision, purpose: str, channel: str
) -> dict[str, Any]:
    """The decision log's row for this attempt of the send (without its message)."""
    call = request.call
    return {
        "patient_id": call.scope.patient_id,
        "idempotency_key": call.idempotency_key,
        "purpose": purpose,
        "decision": decision.logged,
        "rule": decision.rule,
        "reason": decision.reason,
        "channel": channel,
        "enrollment_id": call.scope.enrollment_id,
        "journey_key": call.journey_key,
        "step_id": call.step_id,
        "defer_until": decision.until,
    }


def _log_decision(request: SendMessageInput, decision: Decision, message_id: str | None) -> None:
    call = request.call
    log.info(
        "send %s by rule %s",
        decision.logged,
        decision.rule,
        extra={"enrollment_id": call.scope.enrollment_id, "step_id": call.step_id, "message_id": message_id},
    )
