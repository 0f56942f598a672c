"""One batch of a campaign run: decide every recipient of a range of ordinals with set-based queries,
record the messages in one transaction, then deliver those an external provider has to take.

Exactly once: the recipients' decisions, their messages (idempotency key `campaign:<run>:<patient>`)
and the decision log are written in one transaction, so a retried or replayed batch finds the
recipients decided and skips them. Deliveries go through `MessagingActivities.deliver`, which records
each call before it is made and looks an interrupted one up at the provider before sending again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.messaging.delivery import Delivery
from activities.messaging.intent import IntentOrigin, message_intent, send_context, settle_locally
from activities.messaging.providers import ProviderRegistry
from aftercare.campaigns.audience import RECIPIENTS
from aftercare.compose import ComposedMessage, SendPlan, TemplateNotFoundError, compose, plan_for
from aftercare.events.links import self_service_link
from aftercare.facilities.voice import Voice, voices_of
from aftercare.guardrails import Decision, GuardrailPolicy
from aftercare.guardrails.decide import judge
from aftercare.guardrails.facts import SEND_ATTRIBUTES, load_facts, lock_and_count_recent
from aftercare.guardrails.frequency import LOOK_BACK, caps_applying
from aftercare.journey_variables import JourneyVariables
from aftercare.metrics import MESSAGES
from aftercare.patient_links.tokens import PatientLinks
from aftercare.patient_links.unsubscribe import note_no_opt_out
from aftercare.store.templates import load_template_book
from aftercare.templating import TemplateRenderError
from models.campaign import DEFAULT_CAMPAIGN_PURPOSE, CampaignDefinition
from models.campaign_runs import CampaignBatchInput, CampaignBatchResult
from models.event_tables import Event
from models.tables import Message, Patient, SendDecision, table_of

log = logging.getLogger(__name__)

_MESSAGES = table_of(Message)
_DECISIONS = table_of(SendDecision)
_INSERT_MESSAGES = (
    insert(_MESSAGES)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_MESSAGES.c.idempotency_key)
)
_DECIDE = (
    update(RECIPIENTS)
    .where(RECIPIENTS.c.run_id == bindparam("b_run"), RECIPIENTS.c.ordinal == bindparam("b_ordinal"))
    .values(
        state=bindparam("b_state"),
        rule=bindparam("b_rule"),
        reason=bindparam("b_reason"),
        message_id=bindparam("b_message"),
        defer_until=bindparam("b_until"),
        decided_at=bindparam("b_at"),
    )
)
# Recipient state for each guardrail outcome (an allowed message is `messaged`: its row tells the rest),
# and the decision log's word for each state.
_STATES = {"allow": "messaged", "defer": "deferred", "suppress": "suppressed", "skip": "skipped"}
_LOGGED = {"messaged": "sent", "deferred": "deferred", "suppressed": "suppressed", "skipped": "skipped"}


# Messages delivered together: one statement marks them, one transaction records their outcomes.
DELIVERY_CHUNK = 250


def idempotency_key(run_id: str, patient_id: str) -> str:
    """The key of the one message a run sends a patient."""
    return f"campaign:{run_id}:{patient_id}"


@dataclass
class _Decided:
    """What the batch decided for one recipient."""

    ordinal: int
    patient_id: str
    state: str
    rule: str | None = None
    reason: str | None = None
    until: datetime | None = None
    message: dict[str, Any] | None = None
    # Set once the guardrails judged the send (the decision log records only their decisions).
    channel: str | None = None
    purpose: str | None = None


class CampaignBatchSender:
    """Decides, records and delivers campaign batches."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: ProviderRegistry,
        policy: GuardrailPolicy,
        *,
        delivery_concurrency: int = 16,
        links: PatientLinks | None = None,
        invite_links: InviteLinks | None = None,
    ) -> None:
        self._sessions = sessions
        self._links = links
        self._invite_links = invite_links
        self._providers = providers
        self._delivery = Delivery(sessions, providers, delivery_concurrency)
        self._policy = policy

    async def send(
        self,
        request: CampaignBatchInput,
        campaign: CampaignDefinition,
        heartbeat: Callable[[str], None] = lambda _: None,
    ) -> CampaignBatchResult:
        """Decide the range's open recipients, record their messages, deliver what must leave."""
        now = max(request.due_at, datetime.now(UTC)) if request.due_at else datetime.now(UTC)
        if request.not_after is not None and now >= request.not_after:
            return CampaignBatchResult(complete=False)
        decided = await self._decide(request, campaign, now)
        heartbeat(f"decided {len(decided)}")
        delivered = await self._deliver(request, heartbeat)
        async with self._sessions() as session:
            next_due = await session.scalar(
                select(func.min(RECIPIENTS.c.defer_until)).where(
                    RECIPIENTS.c.run_id == request.run_id,
                    RECIPIENTS.c.ordinal.between(request.first, request.last),
                    RECIPIENTS.c.state == "deferred",
                )
            )
        states = Counter(item.state for item in decided)
        return CampaignBatchResult(
            selected=len(decided),
            messaged=states["messaged"],
            deferred=states["deferred"],
            refused=len(decided) - states["messaged"] - states["deferred"],
            delivered=delivered,
            next_due=next_due,
        )

    async def _decide(
        self, request: CampaignBatchInput, campaign: CampaignDefinition, now: datetime
    ) -> list[_Decided]:
        async with self._sessions.begin() as session:
            rows = await _open_recipients(session, request, now)
            if not rows:
                return []
            book = await load_template_book(session, campaign.templates())
            plans: dict[str, SendPlan | TemplateNotFoundError] = {}
            for variant in campaign.variant_list():
                try:
                    plans[variant.key] = plan_for(campaign.send_spec(variant), book)
                except TemplateNotFoundError as error:
                    plans[variant.key] = error
            invite = await self._invite(session, campaign)
            if isinstance(invite, TemplateNotFoundError):
                plans = dict.fromkeys(plans, invite)
                invite = None
            decided = await self._judge(session, request, campaign, rows, plans, now, invite)
            await self._record(session, request, decided, now)
        counts = Counter(item.state for item in decided)
        log.info("campaign batch decided", extra={"run_id": request.run_id, "states": dict(counts)})
        return decided

    async def _invite(
        self, session: AsyncSession, campaign: CampaignDefinition
    ) -> Event | TemplateNotFoundError | None:
        """The event the campaign invites to; an event not open for registration holds every message
        back (recorded as a template problem naming it)."""
        if campaign.invite is None:
            return None
        event = await session.get(Event, campaign.invite.event)
        if event is None or event.status != "published" or self._invite_links is None:
            state = "unknown" if event is None else event.status
            return TemplateNotFoundError(
                f"the event {campaign.invite.event!r} is {state}: nobody can be invited to it"
            )
        return event

    async def _judge(
        self,
        session: AsyncSession,
        request: CampaignBatchInput,
        campaign: CampaignDefinition,
        rows: Sequence[tuple[int, str, str, Patient | None]],
        plans: dict[str, SendPlan | TemplateNotFoundError],
        now: datetime,
        invite: Event | None = None,
    ) -> list[_Decided]:
        usable = [plan for plan in plans.values() if isinstance(plan, SendPlan)]
        profiles = [patient for _, _, _, patient in rows if patient is not None]
        facts = await load_facts(
            session,
            profiles,
            channels=set().union(*(plan.available for plan in usable)),
            attributes=None if any(plan.wants_attributes for plan in usable) else SEND_ATTRIBUTES,
            minor_age=self._policy.minor_age,
            today=now.date(),
        )
        decided: list[_Decided] = []
        composed: list[tuple[_Decided, Patient, ComposedMessage, str]] = []
        for ordinal, patient_id, variant, patient in rows:
            item = _Decided(ordinal, patient_id, "skipped")
            decided.append(item)
            plan = plans[variant]
            if patient is None:
                item.rule, item.reason = "patient", "the patient is no longer in the patient store"
                continue
            if isinstance(plan, TemplateNotFoundError):
                item.rule, item.reason = "template", str(plan)
                continue
            try:
                variables = _variables(patient, campaign, variant, self._policy.hospital_timezone)
                if invite is not None and self._invite_links is not None:
                    variables = replace(
                        variables,
                        step_variables={
                            "invite": self._invite_links.of(
                                invite, patient.id, campaign.invite.valid_days if campaign.invite else 14
                            )
                        },
                    )
                message = compose(plan, variables, facts[patient.id])
            except (TemplateNotFoundError, TemplateRenderError) as error:
                item.rule, item.reason = "template", f"the message could not be rendered: {error}"
                continue
            purpose = campaign.purpose or message.purpose or DEFAULT_CAMPAIGN_PURPOSE
            composed.append((item, patient, message, purpose))
        capped = [
            p.id for _, p, m, purpose in composed if caps_applying(self._policy.caps, m.channel, purpose)
        ]
        recent = await lock_and_count_recent(session, capped, now - LOOK_BACK) if capped else {}
        voices = await voices_of(session, [patient.id for _, patient, _, _ in composed])
        for item, patient, message, purpose in composed:
            voice = voices.get(patient.id)
            context = send_context(
                patient, message, purpose, urgent=False, over_cap=campaign.over_cap, now=now, voice=voice
            )
            decision = judge(self._policy, context, facts[patient.id], recent.get(patient.id, ()))
            decision = note_no_opt_out(decision, message.channel, message.care_critical)
            self._apply(item, request, message, purpose, decision, voice)
        return decided

    def _apply(
        self,
        item: _Decided,
        request: CampaignBatchInput,
        message: ComposedMessage,
        purpose: str,
        decision: Decision,
        voice: Voice | None,
    ) -> None:
        item.state, item.rule, item.reason = _STATES[decision.outcome], decision.rule, decision.reason
        item.channel, item.purpose = message.channel, purpose
        if decision.outcome == "defer":
            item.until = decision.until
            return
        origin = IntentOrigin(
            idempotency_key=idempotency_key(request.run_id, item.patient_id),
            patient_id=item.patient_id,
            campaign_run_id=request.run_id,
        )
        item.message = message_intent(origin, message, purpose, decision, voice, self._links)
        if item.message["status"] == "skipped" and item.state == "messaged":
            item.state = "skipped"

    async def _record(
        self, session: AsyncSession, request: CampaignBatchInput, decided: list[_Decided], now: datetime
    ) -> None:
        messages = [item.message for item in decided if item.message is not None]
        sent = Counter[tuple[str, str, str]]()
        for values in messages:
            provider = self._providers.for_channel(values["channel"])
            values.setdefault("provider", None)
            values.setdefault("provider_message_id", None)
            values["sent_at"] = now if await settle_locally(values, provider) else None
            if values["status"] != "pending":
                sent[(values["channel"], provider.name, values["status"])] += 1
        if messages:
            inserted = set(await session.scalars(_INSERT_MESSAGES, messages))
            if len(inserted) < len(messages):
                await _link_existing(session, decided, inserted)
        judged = [_decision_row(request, item) for item in decided if item.purpose is not None]
        if judged:
            await session.execute(insert(_DECISIONS), judged)
        await session.execute(
            _DECIDE,
            [
                {
                    "b_run": request.run_id,
                    "b_ordinal": item.ordinal,
                    "b_state": item.state,
                    "b_rule": item.rule,
                    "b_reason": item.reason,
                    "b_message": item.message["id"] if item.message else None,
                    "b_until": item.until,
                    "b_at": now,
                }
                for item in decided
            ],
        )
        for (channel, provider_name, status), count in sent.items():
            MESSAGES.labels(channel, provider_name, status).inc(count)

    async def _deliver(self, request: CampaignBatchInput, heartbeat: Callable[[str], None]) -> int:
        """Deliver the range's messages still waiting for an external provider (new ones, and any an
        interrupted attempt left); raises a retryable error when some could not go yet."""
        async with self._sessions() as session:
            waiting = list(
                await session.scalars(
                    select(Message)
                    .join(RECIPIENTS, RECIPIENTS.c.message_id == Message.id)
                    .where(
                        RECIPIENTS.c.run_id == request.run_id,
                        RECIPIENTS.c.ordinal.between(request.first, request.last),
                        Message.status.in_(("pending", "sending")),
                    )
                    .order_by(RECIPIENTS.c.ordinal)
                )
            )
        if not waiting:
            return 0
        failures: list[ApplicationError] = []
        delivered = 0
        for first in range(0, len(waiting), DELIVERY_CHUNK):
            chunk = waiting[first : first + DELIVERY_CHUNK]
            try:
                await self._delivery.deliver_many(chunk)
            except ApplicationError as error:
                if error.non_retryable:
                    raise
                failures.append(error)
            delivered += len(chunk)
            heartbeat(f"delivered {delivered} of {len(waiting)}")
        if failures:
            delays = [f.next_retry_delay for f in failures if f.next_retry_delay is not None]
            raise ApplicationError(
                "; ".join(failure.message for failure in failures),
                type="ProviderUnavailable",
                next_retry_delay=max(delays) if delays else None,
            )
        return len(waiting)


async def _open_recipients(
    session: AsyncSession, request: CampaignBatchInput, now: datetime
) -> Sequence[tuple[int, str, str, Patient | None]]:
    """The range's recipients still to decide, locked, with their profiles (None: no longer stored)."""
    due = RECIPIENTS.c.state == "pending"
    if request.deferred:
        due = or_(due, (RECIPIENTS.c.state == "deferred") & (RECIPIENTS.c.defer_until <= now))
    rows = await session.execute(
        select(RECIPIENTS.c.ordinal, RECIPIENTS.c.patient_id, RECIPIENTS.c.variant, Patient)
        .select_from(RECIPIENTS)
        .outerjoin(Patient, Patient.id == RECIPIENTS.c.patient_id)
        .where(
            RECIPIENTS.c.run_id == request.run_id,
            RECIPIENTS.c.ordinal.between(request.first, request.last),
            due,
        )
        .order_by(RECIPIENTS.c.ordinal)
        .with_for_update(of=RECIPIENTS)
    )
    return [(ordinal, patient_id, variant, patient) for ordinal, patient_id, variant, patient in rows]


async def _link_existing(session: AsyncSession, decided: list[_Decided], inserted: set[str]) -> None:
    """Point recipients at the message an earlier attempt recorded for them (the key already existed)."""
    clashing = {
        item.message["idempotency_key"]: item
        for item in decided
        if item.message is not None and item.message["idempotency_key"] not in inserted
    }
    rows = await session.execute(
        select(Message.idempotency_key, Message.id).where(Message.idempotency_key.in_(list(clashing)))
    )
    for key, message_id in rows:
        clashing[key].message = {**(clashing[key].message or {}), "id": message_id}


def _decision_row(request: CampaignBatchInput, item: _Decided) -> dict[str, Any]:
    return {
        "patient_id": item.patient_id,
        "enrollment_id": None,
        "journey_key": None,
        "step_id": None,
        "idempotency_key": idempotency_key(request.run_id, item.patient_id),
        "message_id": item.message["id"] if item.message else None,
        "channel": item.channel,
        "purpose": item.purpose,
        "decision": _LOGGED[item.state],
        "rule": item.rule or "allowed",
        "reason": item.reason,
        "defer_until": item.until,
    }


def _variables(
    patient: Patient, campaign: CampaignDefinition, variant: str, hospital_timezone: str
) -> JourneyVariables:
    return JourneyVariables(
        profile=patient,
        patient_resource=None,
        trigger=None,
        event=None,
        context={"campaign": campaign.key, "variant": variant},
        enrollment={"id": None, "journey_key": None, "step_id": None},
        hospital_timezone=hospital_timezone,
        fetched={},
    )


@dataclass(frozen=True)
class InviteLinks:
    """Makes each recipient's self-service link of a campaign's event (`invite` variables)."""

    secret: bytes
    public_base_url: str | None

    def of(self, event: Event, patient_id: str, valid_days: int = 14) -> dict[str, Any]:
        """What the message may say: `invite.url`, `invite.title`, `invite.event_key`, `invite.expires_at`."""
        link = self_service_link(
            self.secret, self.public_base_url, event.key, patient_id, ttl=timedelta(days=valid_days)
        )
        return {
            "url": link.url,
            "title": event.title,
            "event_key": event.key,
            "expires_at": link.expires_at.isoformat(),
        }
