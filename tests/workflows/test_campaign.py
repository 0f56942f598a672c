"""Campaign runs on the time-skipping server, with the real activities on the test database: every
member messaged once, send windows on each patient's clock, throttling, pause and resume,
cancellation, A/B variants, deferral by frequency caps, and expiry."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from aftercare.analytics.attendance import invitations
from aftercare.campaigns.audience import variant_for
from aftercare.campaigns.launch import CampaignLauncher
from aftercare.campaigns.validation import check_campaign, parse_campaign
from aftercare.definitions import DefinitionInvalidError
from aftercare.events.links import read_link_token
from aftercare.events.store import create_event, publish_event
from aftercare.guardrails import FrequencyCap
from aftercare.settings import Settings, event_link_secret
from aftercare.store.campaigns import get_run, publish_campaign
from aftercare.store.consents import record_consent
from aftercare.store.messages import record_intent
from aftercare.store.segments import publish_segment
from models.campaign import CampaignDefinition
from models.campaign_runs import CampaignBatchInput, CampaignRunResult, CampaignRunState, RunControl
from models.campaign_tables import CampaignRecipient
from models.event_api import EventIn, SessionIn
from models.segment import SegmentDefinition
from models.tables import Message, SendDecision
from tests.helpers import publish_templates
from tests.population import store_patients, synthetic_patient
from workflows import WORKFLOWS
from workflows.campaign import CampaignRunWorkflow

ADULTS = SegmentDefinition.model_validate(
    {"key": "adults", "name": "Adults", "criteria": {"age": {"gte": 18}}}
)
FLU_SMS = {
    "key": "flu-sms",
    "channel": "sms",
    "body": "Hi {{ patient.given }}, flu shots are in at Springfield General. Reply STOP to opt out.",
}


@dataclass
class CampaignHarness:
    """Publishes a campaign over stored synthetic patients and runs it on the time-skipping server."""

    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    launcher: CampaignLauncher
    settings: Settings

    key: str = "flu"

    @property
    def run_id(self) -> str:
        """The id of the one-off run of the published campaign (version 1)."""
        return f"{self.key}-v1"

    async def publish(self, **fields: Any) -> CampaignDefinition:
        document = {
            "key": self.key,
            "name": "Flu season",
            "segment": "adults",
            "template": "flu-sms",
            **fields,
        }
        campaign = parse_campaign(document)
        async with self.sessions.begin() as session:
            await check_campaign(session, campaign)
            await publish_campaign(session, campaign)
        return campaign

    async def launch(self, campaign: CampaignDefinition) -> WorkflowHandle[Any, CampaignRunResult]:
        launched = await self.launcher.launch(campaign)
        assert launched.run_id is not None
        return self.env.client.get_workflow_handle_for(CampaignRunWorkflow.run, f"campaign-{launched.run_id}")

    async def now(self) -> datetime:
        """The time-skipping server's clock (ahead of the wall clock once earlier tests skipped time)."""
        return (await self.env.get_current_time()).astimezone(UTC)

    async def finish(self, handle: WorkflowHandle[Any, CampaignRunResult]) -> CampaignRunResult:
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await handle.result()

    async def recipients(self, run_id: str) -> list[CampaignRecipient]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(CampaignRecipient)
                .where(CampaignRecipient.run_id == run_id)
                .order_by(CampaignRecipient.ordinal)
            )
            return list(rows)

    async def messages(self, run_id: str) -> list[Message]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Message).where(Message.campaign_run_id == run_id))
            return list(rows)

    async def batch_events(
        self, handle: WorkflowHandle[Any, Any]
    ) -> list[tuple[datetime, CampaignBatchInput]]:
        """When each batch activity was scheduled (workflow time) and with what input."""
        found = []
        async for event in handle.fetch_history_events():
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name != "send_campaign_batch":
                continue
            [batch] = await self.env.client.data_converter.decode(
                attributes.input.payloads, [CampaignBatchInput]
            )
            found.append((event.event_time.ToDatetime(tzinfo=UTC), batch))
        return found


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    task_queue: str,
    empty_database: Any,
    request: pytest.FixtureRequest,
) -> AsyncIterator[CampaignHarness]:
    """A worker with the real activities (outbox provider) on the test's task queue, with the frequency
    caps a test asks for with `@pytest.mark.caps([...])`."""
    marker = request.node.get_closest_marker("caps")
    worker_settings = settings.model_copy(
        update={"temporal_task_queue": task_queue, "frequency_caps": marker.args[0] if marker else []}
    )
    async with running_campaigns(
        time_skipping_env, sessions, worker_settings, task_queue, key=f"flu-{task_queue.removeprefix('tq-')}"
    ) as harness:
        yield harness


@contextlib.asynccontextmanager
async def running_campaigns(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    task_queue: str,
    *,
    key: str = "flu",
) -> AsyncIterator[CampaignHarness]:
    """The flu template and the adults segment published, and a worker with the real activities of
    these settings (outbox provider) on the task queue."""
    await publish_templates(sessions, FLU_SMS)
    async with sessions.begin() as session:
        await publish_segment(session, ADULTS)
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(sessions, settings, env.client),
    )
    async with worker:
        # Run ids come from the key: every test has its own on the session's Temporal server.
        yield CampaignHarness(
            env, sessions, CampaignLauncher(sessions, env.client, task_queue), settings, key=key
        )


async def texted_earlier(
    sessions: async_sessionmaker[AsyncSession], patient_ids: list[str], at: datetime
) -> None:
    """Each patient was texted at `at` (which counts against a frequency cap)."""
    async with sessions.begin() as session:
        for patient_id in patient_ids:
            await record_intent(
                session,
                {
                    "id": f"earlier-{patient_id}",
                    "idempotency_key": f"earlier-{patient_id}",
                    "patient_id": patient_id,
                    "channel": "sms",
                    "to": "+15551000000",
                    "body": "An appointment reminder",
                    "status": "sent",
                    "purpose": "appointment_reminders",
                    "created_at": at,
                },
            )


async def test_a_run_messages_every_member_once_and_records_who_was_passed_over_and_why(
    harness: CampaignHarness,
) -> None:
    patients = [synthetic_patient(i) for i in range(10)]
    patients.append(synthetic_patient(10, phone=False))
    patients.append(synthetic_patient(11, deceased=True))
    patients.append(synthetic_patient(12, birth_date="2015-01-01"))
    patients.append(synthetic_patient(13))
    await store_patients(harness.sessions, patients)
    async with harness.sessions.begin() as session:
        await record_consent(session, ["cp-13"], "sms", "revoked", "front-desk", purpose="health_education")

    campaign = await harness.publish(batch_size=4)
    result = await harness.finish(await harness.launch(campaign))

    assert result.status == "completed"
    assert result.audience == 12  # the deceased patient and the child are not in the segment
    recipients = await harness.recipients(result.run_id)
    states = {r.patient_id: (r.state, r.rule) for r in recipients}
    assert states["cp-10"] == ("skipped", "reachability")
    assert states["cp-13"] == ("suppressed", "consent")
    assert {states[f"cp-{i}"] for i in range(10)} == {("messaged", "allowed")}
    messages = await harness.messages(result.run_id)
    sent = {m.patient_id: m for m in messages if m.status == "sent"}
    assert sorted(sent) == sorted(f"cp-{i}" for i in range(10))
    assert sent["cp-3"].body == "Hi Pat3, flu shots are in at Springfield General. Reply STOP to opt out."
    assert sent["cp-3"].purpose == "health_education"
    skipped = {m.patient_id: m.reason for m in messages if m.status == "skipped"}
    assert skipped == {
        "cp-10": "the patient has no phone number",
        "cp-13": "the patient withdrew consent for health_education by sms (front-desk)",
    }
    async with harness.sessions() as session:
        decisions = await session.scalar(
            select(func.count())
            .select_from(SendDecision)
            .where(SendDecision.idempotency_key.like("campaign:%"))
        )
        run = await get_run(session, result.run_id)
    assert decisions == 12
    assert run is not None
    assert run.status == "completed"
    assert run.audience == 12


async def test_a_batch_run_again_decides_and_sends_nothing_twice(harness: CampaignHarness) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(6)])
    campaign = await harness.publish()
    result = await harness.finish(await harness.launch(campaign))

    activities = build_activities(harness.sessions, harness.settings, harness.env.client)
    send_batch = next(a for a in activities if getattr(a, "__name__", "") == "send_campaign_batch")
    again = await ActivityEnvironment().run(
        send_batch,
        CampaignBatchInput(
            run_id=result.run_id, campaign_key=harness.key, campaign_version=1, first=1, last=6
        ),
    )
    assert (again.selected, again.messaged, again.delivered) == (0, 0, 0)
    assert len(await harness.messages(result.run_id)) == 6


async def test_each_zone_is_sent_only_inside_its_send_window_on_the_patients_clock(
    harness: CampaignHarness,
) -> None:
    zones = ["America/New_York", "Asia/Tokyo"]
    await store_patients(harness.sessions, [synthetic_patient(i, zone=zones[i % 2]) for i in range(8)])
    # A window that opens two hours from now in New York: closed there at launch.
    local = (await harness.now()).astimezone(ZoneInfo("America/New_York"))
    start = (local + timedelta(hours=2)).strftime("%H:00")
    end = (local + timedelta(hours=4)).strftime("%H:00")
    campaign = await harness.publish(send_window={"start": start, "end": end}, batch_size=2)
    handle = await harness.launch(campaign)
    result = await harness.finish(handle)

    assert result.messaged == 8
    recipients = {r.ordinal: r.zone for r in await harness.recipients(result.run_id)}
    batches = await harness.batch_events(handle)
    assert batches
    for scheduled, batch in batches:
        zone = recipients[batch.first]
        clock = scheduled.astimezone(ZoneInfo(zone)).strftime("%H:%M")
        assert start <= clock < end or (end < start and (clock >= start or clock < end)), (zone, clock)
    assert {recipients[b.first] for _, b in batches} == set(zones)


async def test_a_throttled_campaign_spaces_its_batches_to_hold_the_rate(harness: CampaignHarness) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(30)])
    campaign = await harness.publish(throttle={"per_second": 5})
    handle = await harness.launch(campaign)
    result = await harness.finish(handle)

    assert result.messaged == 30
    batches = await harness.batch_events(handle)
    assert [b.last - b.first + 1 for _, b in batches] == [10, 10, 10]  # two seconds' worth each
    gaps = [(later - earlier).total_seconds() for (earlier, _), (later, _) in itertools.pairwise(batches)]
    assert all(gap >= 1.95 for gap in gaps), gaps  # event times are taken a few ms after the round starts


async def test_a_paused_run_sends_nothing_until_it_is_resumed(harness: CampaignHarness) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(12)])
    campaign = await harness.publish(throttle={"per_minute": 60})
    handle = await harness.launch(campaign)
    state = await handle.execute_update(CampaignRunWorkflow.pause, RunControl(reason="checking the wording"))
    assert state.paused
    assert state.status == "paused"
    held = len(await harness.messages(harness.run_id))
    await asyncio.sleep(1.0)
    assert len(await harness.messages(harness.run_id)) == held
    assert (await handle.query(CampaignRunWorkflow.state)).phase == "Paused: checking the wording"
    async with harness.sessions() as session:
        run = await get_run(session, harness.run_id)
    assert run is not None
    assert run.status == "paused"

    resumed: CampaignRunState = await handle.execute_update(CampaignRunWorkflow.resume, RunControl())
    assert not resumed.paused
    result = await harness.finish(handle)
    assert result.messaged == 12


async def test_cancelling_a_run_records_the_rest_of_the_audience_as_cancelled(
    harness: CampaignHarness,
) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(20)])
    campaign = await harness.publish(throttle={"per_hour": 3600})  # two per round, a second apart
    handle = await harness.launch(campaign)
    async with asyncio.timeout(20):
        while not await harness.messages(harness.run_id):
            await asyncio.sleep(0.05)
    await harness.launcher.cancel(campaign)
    with pytest.raises(WorkflowFailureError):
        await harness.finish(handle)

    states = [r.state for r in await harness.recipients(harness.run_id)]
    assert set(states) == {"messaged", "cancelled"}
    assert states.count("messaged") == len(await harness.messages(harness.run_id))
    async with harness.sessions() as session:
        run = await get_run(session, harness.run_id)
    assert run is not None
    assert run.status == "cancelled"


async def test_ab_variants_split_the_audience_by_weight_and_send_each_its_template(
    harness: CampaignHarness,
) -> None:
    await publish_templates(
        harness.sessions,
        {**FLU_SMS, "key": "flu-b", "body": "{{ patient.given }}: get your flu shot this week."},
    )
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(200)])
    campaign = await harness.publish(
        template=None,
        variants=[
            {"key": "a", "template": "flu-sms", "weight": 3},
            {"key": "b", "template": "flu-b", "weight": 1},
        ],
    )
    result = await harness.finish(await harness.launch(campaign))

    recipients = await harness.recipients(result.run_id)
    assert all(r.variant == variant_for(campaign, r.patient_id) for r in recipients)
    share_a = sum(r.variant == "a" for r in recipients) / len(recipients)
    assert 0.65 < share_a < 0.85
    bodies = {m.patient_id: m.body for m in await harness.messages(result.run_id)}
    for r in recipients:
        assert bodies[r.patient_id].startswith("Hi ") == (r.variant == "a")


@pytest.mark.caps([FrequencyCap(channel="sms", per_day=1)])
async def test_sends_deferred_by_a_frequency_cap_go_once_the_cap_allows(harness: CampaignHarness) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(4)])
    await texted_earlier(harness.sessions, ["cp-0", "cp-1"], await harness.now() - timedelta(hours=20))
    campaign = await harness.publish()
    result = await harness.finish(await harness.launch(campaign))

    assert result.messaged == 4
    assert {r.state for r in await harness.recipients(result.run_id)} == {"messaged"}
    async with harness.sessions() as session:
        deferred = await session.scalars(
            select(SendDecision.patient_id).where(
                SendDecision.decision == "deferred", SendDecision.rule == "frequency_cap"
            )
        )
        assert sorted(deferred) == ["cp-0", "cp-1"]


async def test_recipients_whose_window_never_comes_before_the_run_expires_are_expired(
    harness: CampaignHarness,
) -> None:
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(3)])
    local = (await harness.now()).astimezone(ZoneInfo("America/New_York"))
    start = (local + timedelta(hours=3)).strftime("%H:00")
    end = (local + timedelta(hours=4)).strftime("%H:00")
    campaign = await harness.publish(send_window={"start": start, "end": end}, expires_after="PT1H")
    result = await harness.finish(await harness.launch(campaign))

    assert result.status == "completed"
    assert result.expired == 3
    recipients = await harness.recipients(result.run_id)
    assert {(r.state, r.reason) for r in recipients} == {
        ("expired", "the run ended before this patient's turn came")
    }


async def test_a_campaign_inviting_to_an_event_gives_each_recipient_their_own_link(
    harness: CampaignHarness,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    async with harness.sessions.begin() as session:
        await create_event(
            session,
            EventIn(
                key="flu-clinic",
                title="Flu clinic",
                timezone="UTC",
                sessions=[SessionIn(id="am", start=start, end=start + timedelta(hours=3), capacity=50)],
            ),
        )
        await publish_event(session, "flu-clinic")
    await publish_templates(
        harness.sessions,
        {
            "key": "flu-invite",
            "channel": "sms",
            "body": "{{ invite.title }}: choose a time at {{ invite.url }}",
        },
    )
    await store_patients(harness.sessions, [synthetic_patient(i) for i in range(3)])
    campaign = await harness.publish(template="flu-invite", invite={"event": "flu-clinic", "valid_days": 3})
    result = await harness.finish(await harness.launch(campaign))

    messages = {m.patient_id: m.body or "" for m in await harness.messages(result.run_id)}
    assert sorted(messages) == ["cp-0", "cp-1", "cp-2"]
    secret = event_link_secret(harness.settings)
    for patient_id, body in messages.items():
        assert body.startswith("Flu clinic: choose a time at ")
        token = body.rsplit("/e/", 1)[1]
        claims = read_link_token(secret, token)
        assert (claims.event_key, claims.patient_id) == ("flu-clinic", patient_id)
        assert claims.expires_at - datetime.now(UTC) <= timedelta(days=3)
    async with harness.sessions() as session:  # the analytics count the three invitations sent
        assert await invitations(session, "flu-clinic") == {"flu-clinic": 3}


async def test_a_campaign_inviting_to_an_unknown_event_is_refused_and_a_draft_one_sends_nothing(
    harness: CampaignHarness,
) -> None:
    with pytest.raises(DefinitionInvalidError) as refused:
        await harness.publish(invite={"event": "nowhere"})
    assert [(p.loc, p.type) for p in refused.value.problems] == [(("invite", "event"), "unknown_event")]

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    async with harness.sessions.begin() as session:
        await create_event(
            session,
            EventIn(
                key="draft-clinic",
                title="Not yet",
                timezone="UTC",
                sessions=[SessionIn(id="am", start=start, end=start + timedelta(hours=3), capacity=50)],
            ),
        )
    await store_patients(harness.sessions, [synthetic_patient(0)])
    campaign = await harness.publish(invite={"event": "draft-clinic"})
    result = await harness.finish(await harness.launch(campaign))
    [recipient] = await harness.recipients(result.run_id)
    assert (recipient.state, recipient.rule) == ("skipped", "template")
    assert recipient.reason == "the event 'draft-clinic' is draft: nobody can be invited to it"
    assert all(m.status == "skipped" for m in await harness.messages(result.run_id))
