"""A run's results follow its messages: delivery, opens and clicks from provider events, replies
(texts that are not keywords) and opt-outs within 7 days, per A/B variant, and the reasons recipients
were passed over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.campaigns import CampaignActivities
from activities.messaging.campaign_batch import CampaignBatchSender
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from aftercare.campaigns.audience import freeze_audience
from aftercare.campaigns.results import run_results
from aftercare.guardrails import GuardrailPolicy
from aftercare.store.campaigns import publish_campaign
from aftercare.store.consents import record_consent
from aftercare.store.message_events import ProviderEvent, apply_provider_event
from models.campaign import CampaignDefinition
from models.campaign_runs import CampaignBatchInput
from models.segment import SegmentDefinition
from models.tables import InboundMessage, Message
from tests.helpers import publish_templates
from tests.population import store_patients, synthetic_patient

pytestmark = pytest.mark.usefixtures("empty_database")

CAMPAIGN = CampaignDefinition.model_validate(
    {
        "key": "ab",
        "name": "A/B",
        "segment": "adults",
        "variants": [{"key": "a", "template": "t-a"}, {"key": "b", "template": "t-b"}],
    }
)
ADULTS = SegmentDefinition.model_validate(
    {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
)


async def test_results_count_what_happened_to_the_messages_per_variant(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await store_patients(
        sessions, [synthetic_patient(i) for i in range(20)] + [synthetic_patient(20, phone=False)]
    )
    await publish_templates(
        sessions, {"key": "t-a", "channel": "sms", "body": "A"}, {"key": "t-b", "channel": "sms", "body": "B"}
    )
    async with sessions.begin() as session:
        await publish_campaign(session, CAMPAIGN)
        await freeze_audience(session, "ab-v1", CAMPAIGN, ADULTS, datetime.now(UTC), "America/New_York")
    registry = ProviderRegistry({}, OutboxProvider())
    activities = CampaignActivities(
        sessions, CampaignBatchSender(sessions, registry, GuardrailPolicy()), "America/New_York"
    )
    await ActivityEnvironment().run(
        activities.send_campaign_batch,
        CampaignBatchInput(run_id="ab-v1", campaign_key="ab", campaign_version=1, first=1, last=21),
    )
    async with sessions() as session:
        sent = list(
            await session.scalars(
                select(Message).where(Message.status == "sent").order_by(Message.patient_id)
            )
        )
    later = datetime.now(UTC) + timedelta(minutes=5)
    async with sessions.begin() as session:
        for number, (message, event) in enumerate(
            [(sent[0], "delivered"), (sent[1], "delivered"), (sent[1], "open"), (sent[1], "click")]
        ):
            status = "delivered" if event == "delivered" else None
            await apply_provider_event(
                session, message.id, ProviderEvent("outbox", f"e{number}", event, later, status)
            )
        session.add(
            InboundMessage(
                provider_message_id="in-1",
                provider="twilio",
                channel="sms",
                from_address="+1",
                patient_id=sent[2].patient_id,
                body="When?",
            )
        )
        session.add(
            InboundMessage(
                provider_message_id="in-2",
                provider="twilio",
                channel="sms",
                from_address="+1",
                patient_id=sent[3].patient_id,
                body="STOP",
                keyword="opt_out",
            )
        )
        await record_consent(session, [sent[3].patient_id], "sms", "revoked", "sms-keyword")

    async with sessions() as session:
        results = await run_results(session, "ab-v1")

    total = results.total
    assert (total.targeted, total.states["messaged"], total.states["skipped"], total.sent) == (21, 20, 1, 20)
    assert (total.delivered, total.opened, total.clicked, total.replied, total.opted_out) == (2, 1, 1, 1, 1)
    assert set(results.variants) == {"a", "b"}
    assert sum(tally.targeted for tally in results.variants.values()) == 21
    assert sum(tally.sent for tally in results.variants.values()) == 20
    [reason] = results.reasons
    assert (reason.state, reason.rule, reason.reason, reason.count) == (
        "skipped",
        "reachability",
        "the patient has no phone number",
        1,
    )
