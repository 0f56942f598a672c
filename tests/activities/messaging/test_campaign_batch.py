"""A campaign batch through a real provider: the `sendgrid` SDK against Prism serving SendGrid's Mail
Send v3 spec. Every recipient is decided once, every email goes once, and a batch interrupted after
its decisions (or in the middle of a provider call) delivers what is missing without sending twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.campaigns import CampaignActivities
from activities.messaging.campaign_batch import CampaignBatchSender
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.sendgrid_email import SendGridEmailProvider
from aftercare.campaigns.audience import freeze_audience
from aftercare.guardrails import GuardrailPolicy
from aftercare.store.campaigns import publish_campaign
from aftercare.store.message_events import ProviderEvent, apply_provider_event
from aftercare.store.segments import publish_segment
from models.campaign import CampaignDefinition
from models.campaign_runs import CampaignBatchInput
from models.segment import SegmentDefinition
from models.tables import Message, Patient
from tests.helpers import BatchRecordingProvider, RecordingProvider, publish_templates
from tests.population import store_patients, synthetic_patient

pytestmark = pytest.mark.usefixtures("empty_database")

CAMPAIGN = CampaignDefinition.model_validate(
    {"key": "flu-email", "name": "Flu by email", "segment": "adults", "template": "flu-email"}
)
BATCH = CampaignBatchInput(
    run_id="flu-email-v1", campaign_key="flu-email", campaign_version=1, first=1, last=40
)


async def _prepare(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    await store_patients(sessions, [synthetic_patient(i, email=True) for i in range(count)])
    await publish_templates(
        sessions,
        {
            "key": "flu-email",
            "channel": "email",
            "subject": "Your flu shot, {{ patient.given }}",
            "body": "Flu shots are in at Springfield General.",
            "html": "<p>Flu shots are in, <b>{{ patient.given }}</b>.</p>",
        },
    )
    segment = SegmentDefinition.model_validate(
        {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
    )
    async with sessions.begin() as session:
        await publish_segment(session, segment)
        await publish_campaign(session, CAMPAIGN)
        await freeze_audience(
            session, "flu-email-v1", CAMPAIGN, segment, datetime.now(UTC), "America/New_York"
        )


def _activities(
    sessions: async_sessionmaker[AsyncSession], sendgrid: RecordingProvider | BatchRecordingProvider
) -> CampaignActivities:
    registry = ProviderRegistry({"email": sendgrid}, OutboxProvider())
    sender = CampaignBatchSender(sessions, registry, GuardrailPolicy(), delivery_concurrency=8)
    return CampaignActivities(sessions, sender, "America/New_York")


async def _messages(sessions: async_sessionmaker[AsyncSession]) -> list[Message]:
    async with sessions() as session:
        return list(await session.scalars(select(Message).order_by(Message.patient_id)))


async def _emails_once_through_sendgrid(
    sessions: async_sessionmaker[AsyncSession], sendgrid: RecordingProvider | BatchRecordingProvider
) -> None:
    """Every recipient of a 40-patient batch emailed once: a second run of the batch sends nothing."""
    await _prepare(sessions, 40)
    activities = _activities(sessions, sendgrid)

    result = await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)
    again = await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)

    assert (result.selected, result.messaged, result.delivered) == (40, 40, 40)
    assert (again.selected, again.delivered) == (0, 0)
    messages = await _messages(sessions)
    assert len({m.id for m in messages}) == 40
    assert {m.status for m in messages} == {"queued"}
    assert all(m.provider == "sendgrid" and m.sent_at is not None for m in messages)
    assert messages[0].subject.startswith("Your flu shot, Pat")  # type: ignore[union-attr]


async def test_a_batch_emails_every_recipient_once_through_sendgrid(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    sendgrid = RecordingProvider(
        SendGridEmailProvider(sessions, "SG.test-key", "care@hospital.example", base_url=sendgrid_mock)
    )
    await _emails_once_through_sendgrid(sessions, sendgrid)
    assert sendgrid.calls.count("send") == 40


async def test_sendgrid_takes_a_batchs_emails_in_one_request_each_with_its_own_record(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    sendgrid = BatchRecordingProvider(
        SendGridEmailProvider(sessions, "SG.test-key", "care@hospital.example", base_url=sendgrid_mock)
    )
    await _emails_once_through_sendgrid(sessions, sendgrid)
    assert (sendgrid.calls, sendgrid.sizes) == (["send_batch"], [40])  # Prism validated the request


async def test_a_batch_sendgrid_refuses_for_one_address_goes_one_by_one(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    await _prepare(sessions, 5)
    async with sessions.begin() as session:  # an address the spec refuses (and SendGrid would)
        await session.execute(
            update(Patient).where(Patient.id == "cp-0").values(email="not an address@example.org")
        )
    sendgrid = BatchRecordingProvider(
        SendGridEmailProvider(sessions, "SG.test-key", "care@hospital.example", base_url=sendgrid_mock)
    )
    activities = _activities(sessions, sendgrid)

    result = await ActivityEnvironment().run(
        activities.send_campaign_batch, BATCH.model_copy(update={"last": 5})
    )

    assert sendgrid.calls == ["send_batch"] + ["send"] * 5
    assert result.messaged == 5
    statuses = {m.to: m.status for m in await _messages(sessions)}
    assert statuses.pop("not an address@example.org") == "failed"
    assert set(statuses.values()) == {"queued"}


async def test_an_interrupted_batch_delivers_what_is_missing_and_nothing_twice(
    sessions: async_sessionmaker[AsyncSession], sendgrid_mock: str
) -> None:
    await _prepare(sessions, 10)
    sendgrid = RecordingProvider(
        SendGridEmailProvider(sessions, "SG.test-key", "care@hospital.example", base_url=sendgrid_mock)
    )
    activities = _activities(sessions, sendgrid)
    await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)
    [first, second, *_] = await _messages(sessions)
    # The worker died: one message never left (still `pending`), one was out at SendGrid (`sending`).
    async with sessions.begin() as session:
        await session.execute(
            update(Message).where(Message.id == first.id).values(status="pending", sent_at=None)
        )
        await session.execute(
            update(Message).where(Message.id == second.id).values(status="sending", sent_at=None)
        )
    sendgrid.calls.clear()

    with pytest.raises(ApplicationError, match="1 of 2 messages could not be delivered yet") as waiting:
        await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)
    assert not waiting.value.non_retryable
    assert sorted(sendgrid.calls) == ["find_sent", "send"]  # the pending one went; the other is looked up

    async with sessions.begin() as session:
        await apply_provider_event(
            session,
            second.id,
            ProviderEvent("sendgrid", "evt-2", "processed", datetime.now(UTC), status="queued"),
        )
    sendgrid.calls.clear()
    result = await ActivityEnvironment().run(activities.send_campaign_batch, BATCH)
    assert result.delivered == 0
    assert sendgrid.calls == []  # SendGrid's event said it went out: it is not sent again
    assert {m.status for m in await _messages(sessions)} == {"queued"}
