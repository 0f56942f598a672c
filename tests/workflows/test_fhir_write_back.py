"""Write-back: a journey's message becomes a Communication on the FHIR test server, written by its own
workflow (the journey does not wait for it), once however often it is written; a send deferred to a
known moment is a CommunicationRequest until it goes out (completed) or is called off (revoked); a
provider's later report moves the Communication on; a Task completed or cancelled in the EHR ends the
care task and tells the journey; a discharge's risk score becomes a RiskAssessment, once per version of
the score."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.fhir_write_back import FhirWriteBackActivities
from activities.registry import build_activities
from aftercare.enrollment.fhir_ingest import ingest_fhir_resources
from aftercare.enrollment.risk_write_back import write_risk_back
from aftercare.enrollment.write_back import write_reported_messages_back
from aftercare.fhir.outreach import (
    MESSAGE_IDENTIFIER_SYSTEM,
    PLANNED_IDENTIFIER_SYSTEM,
    TASK_IDENTIFIER_SYSTEM,
    SentMessage,
    communication,
)
from aftercare.fhir.risk_assessment import RISK_IDENTIFIER_SYSTEM
from aftercare.guardrails import FrequencyCap
from aftercare.settings import Settings
from aftercare.store.consents import record_consent
from aftercare.store.message_events import ProviderEvent, apply_provider_event
from aftercare.store.risk_scores import scores_of
from aftercare.store.tasks import get_task, list_tasks
from models.temporal import WriteBackMessageInput
from tests.conftest import ABDUL_PATIENT_ID
from tests.fhir_server import FhirTestServer, running_fhir_server
from tests.helpers import load_synthea_patient
from tests.population import store_patients, synthetic_patient
from tests.workflows.fixtures import JourneyHarness, reach_step, started_time_skipping_env, workflow_started
from tests.workflows.test_campaign import running_campaigns, texted_earlier
from tests.workflows.test_enrollment import journey
from workflows.fhir_write_back import FhirWriteBackWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of each test's own: waiting on a write-back workflow with time skipping
    unlocked leaves the server's clock in a state the next modules' journeys do not expect, and a
    write-back a test leaves behind (its FHIR server gone) keeps the next test's clock from skipping."""
    async with started_time_skipping_env() as env:
        yield env


TEXT = "Hi {{ patient.given }}, please call us about your results."


@pytest.fixture
async def fhir_server() -> AsyncIterator[FhirTestServer]:
    async with running_fhir_server() as server:
        yield server


@pytest.fixture
def writing(settings: Settings, fhir_server: FhirTestServer, task_queue: str) -> Settings:
    """The settings of a worker that writes outreach back to the FHIR test server."""
    return settings.model_copy(
        update={
            "fhir_base_url": fhir_server.base_url,
            "fhir_write_back": True,
            "temporal_task_queue": task_queue,
        }
    )


async def test_a_sent_message_becomes_a_communication_in_the_chart(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    definition = journey({"id": "notify", "send": {"channel": "sms", "body": TEXT}})
    handle, enrollment_id, _ = await journeys.enroll(definition)
    activities = build_activities(sessions, writing, journeys.env.client)
    async with journeys.make_worker(activities=activities):
        await journeys.finish(handle)
        [message] = await journeys.messages(enrollment_id)
        writer = journeys.env.client.get_workflow_handle_for(
            FhirWriteBackWorkflow.run, f"fhir-write-back-message-{message.id}"
        )
        await workflow_started(writer)
        async with journeys.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            written = await writer.result()

    [chart] = fhir_server.store.of_type("Communication")
    assert written.reference == f"Communication/{chart['id']}"
    assert chart["status"] == "completed"
    assert chart["identifier"] == [{"system": MESSAGE_IDENTIFIER_SYSTEM, "value": message.id}]
    assert chart["subject"] == {"reference": f"Patient/{ABDUL_PATIENT_ID}"}
    assert chart["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    assert chart["topic"] == {"text": "Workflow test"}
    assert chart["payload"] == [{"contentString": message.body}]
    assert chart["sent"]
    assert await journeys.history(enrollment_id) == [("notify", "sent")]


async def test_writing_a_message_again_updates_the_one_communication(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    definition = journey({"id": "notify", "send": {"channel": "sms", "body": TEXT}})
    handle, enrollment_id, _ = await journeys.enroll(definition)
    async with journeys.make_worker():
        await journeys.finish(handle)
    [message] = await journeys.messages(enrollment_id)
    assert fhir_server.store.of_type("Communication") == []  # write-back is off by default

    writer = FhirWriteBackActivities(sessions, writing)
    first = await writer.write_back_message(WriteBackMessageInput(message_id=message.id))
    again = await writer.write_back_message(WriteBackMessageInput(message_id=message.id))
    assert first.reference == again.reference
    [chart] = fhir_server.store.of_type("Communication")
    assert chart["meta"]["versionId"] == "2"


async def ehr_changes(
    journeys: JourneyHarness, fhir_server: FhirTestServer, resource: dict[str, Any], *, times: int = 1
) -> dict[str, Any]:
    """The EHR updates a resource, and its notification reaches Aftercare (`times` times)."""
    changed = fhir_server.put(resource)
    for _ in range(times):
        await ingest_fhir_resources(
            journeys.sessions,
            journeys.starter,
            journeys.env.client,
            [changed],
            source="notification:default",
            phone_region="US",
        )
    return changed


async def test_a_care_task_is_a_fhir_task_and_completing_it_in_the_ehr_moves_the_journey_on(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    definition = journey(
        {
            "id": "call",
            "task": {"queue": "care-coordinators", "title": "Call {{ patient.name }}", "due": "P1D"},
        },
        {"id": "await-call", "wait_for": {"event": "task.completed", "timeout": "P2D"}},
        {
            "id": "thanks",
            "send": {"channel": "sms", "body": "Your care team called: {{ event.data.outcome }}"},
        },
    )
    activities = build_activities(sessions, writing, journeys.env.client)
    async with journeys.make_worker(activities=activities):
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "await-call")
        async with sessions() as session:
            [task] = await list_tasks(session, queue="care-coordinators")
        writer = journeys.env.client.get_workflow_handle_for(
            FhirWriteBackWorkflow.run, f"fhir-write-back-task-{task.id}"
        )
        await workflow_started(writer)
        async with journeys.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            await writer.result()
        [chart] = fhir_server.store.of_type("Task")
        assert (chart["status"], chart["intent"], chart["owner"], chart["for"]) == (
            "requested",
            "order",
            {"display": "care-coordinators"},
            {"reference": f"Patient/{ABDUL_PATIENT_ID}"},
        )
        assert chart["identifier"] == [{"system": TASK_IDENTIFIER_SYSTEM, "value": task.id}]

        # The EHR completes the Task; its notification reaches Aftercare.
        await ehr_changes(
            journeys, fhir_server, chart | {"status": "completed", "businessStatus": {"text": "reached"}}
        )
        await journeys.finish(handle)

    async with sessions() as session:
        completed = await get_task(session, task.id)
    assert completed is not None
    assert (completed.status, completed.outcome) == ("completed", "reached")
    assert completed.completed_by == f"fhir:Task/{chart['id']}"
    [message] = await journeys.messages(enrollment_id)
    assert message.body == "Your care team called: reached"


async def chart_of(fhir_server: FhirTestServer, resource_type: str, status: str) -> dict[str, Any]:
    """The one resource of the type once it has the status (written by a workflow of its own)."""
    async with asyncio.timeout(30):
        while True:
            found = fhir_server.store.of_type(resource_type)
            if found and found[0]["status"] == status:
                [resource] = found
                return resource
            await asyncio.sleep(0.1)


NOTIFY = journey({"id": "notify", "send": {"channel": "sms", "body": TEXT}})


@pytest.fixture
async def in_quiet_hours(
    journeys: JourneyHarness, writing: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[datetime]:
    """A writing worker whose quiet hours (UTC: the Synthea patient has no zone) run from an hour ago
    to in two; yields the server's time."""
    now = await journeys.env.get_current_time()
    quiet = {
        "hospital_timezone": "UTC",
        "quiet_hours_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_hours_end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    activities = build_activities(sessions, writing.model_copy(update=quiet), journeys.env.client)
    async with journeys.make_worker(activities=activities):
        yield now


async def test_a_deferred_send_is_a_communication_request_until_it_goes_out(
    journeys: JourneyHarness, fhir_server: FhirTestServer, in_quiet_hours: datetime
) -> None:
    handle, enrollment_id, _ = await journeys.enroll(NOTIFY)
    planned = await chart_of(fhir_server, "CommunicationRequest", "active")
    key = f"{enrollment_id}/notify/1"
    assert planned["identifier"] == [{"system": PLANNED_IDENTIFIER_SYSTEM, "value": key}]
    assert planned["subject"] == {"reference": f"Patient/{ABDUL_PATIENT_ID}"}
    assert planned["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    assert planned["reasonCode"] == [{"text": "Workflow test"}]
    due = datetime.fromisoformat(planned["occurrenceDateTime"])
    assert timedelta(hours=1, minutes=58) < due - in_quiet_hours < timedelta(hours=2, minutes=1)
    assert "payload" not in planned  # the text is composed when it goes out
    assert fhir_server.store.of_type("Communication") == []

    await journeys.finish(handle)
    done = await chart_of(fhir_server, "CommunicationRequest", "completed")
    sent = await chart_of(fhir_server, "Communication", "completed")
    assert done["id"] == planned["id"]  # the same request, updated
    assert sent["basedOn"] == [
        {"type": "CommunicationRequest", "identifier": {"system": PLANNED_IDENTIFIER_SYSTEM, "value": key}}
    ]
    [message] = await journeys.messages(enrollment_id)
    assert sent["identifier"] == [{"system": MESSAGE_IDENTIFIER_SYSTEM, "value": message.id}]


async def test_a_deferred_send_called_off_revokes_its_communication_request(
    journeys: JourneyHarness, fhir_server: FhirTestServer, in_quiet_hours: datetime
) -> None:
    handle, enrollment_id, _ = await journeys.enroll(NOTIFY)
    await chart_of(fhir_server, "CommunicationRequest", "active")
    await handle.cancel()
    revoked = await chart_of(fhir_server, "CommunicationRequest", "revoked")
    assert revoked["statusReason"] == {"text": "the journey ended before the send was due"}
    assert await journeys.messages(enrollment_id) == []
    assert fhir_server.store.of_type("Communication") == []


async def test_a_providers_later_report_moves_the_communication_on_once(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    activities = build_activities(sessions, writing, journeys.env.client)
    async with journeys.make_worker(activities=activities):
        handle, enrollment_id, _ = await journeys.enroll(NOTIFY)
        await journeys.finish(handle)
        [message] = await journeys.messages(enrollment_id)
        sent = await chart_of(fhir_server, "Communication", "completed")

        bounce = ProviderEvent(
            provider="twilio",
            event_id="SM1:undelivered",
            event="undelivered",
            occurred_at=datetime.now(UTC),
            status="undelivered",
            detail="Twilio error 30003",
        )
        for _ in range(2):  # the provider reports twice; the second changes nothing
            async with sessions.begin() as session:
                await apply_provider_event(session, message.id, bounce)
            await write_reported_messages_back(sessions, journeys.env.client, writing, [message.id])
        bounced = await chart_of(fhir_server, "Communication", "not-done")

    assert bounced["id"] == sent["id"]
    assert bounced["statusReason"] == {"text": "Twilio error 30003"}
    assert bounced["meta"]["versionId"] == "2"  # written once more, not twice


def test_a_failed_message_is_entered_in_error_and_a_bounced_one_not_done_with_the_reason() -> None:
    def chart(status: str) -> dict[str, Any]:
        return communication(
            SentMessage(
                message_id="m", patient_id="p", channel="email", status=status, reason="why", body="Hi"
            )
        )

    assert (chart("delivered")["status"], "statusReason" in chart("delivered")) == ("completed", False)
    assert (chart("failed")["status"], chart("failed")["statusReason"]) == (
        "entered-in-error",
        {"text": "why"},
    )
    assert (chart("undelivered")["status"], chart("undelivered")["statusReason"]) == (
        "not-done",
        {"text": "why"},
    )
    assert "payload" not in chart("undelivered")


async def test_a_care_task_cancelled_in_the_ehr_is_cancelled_and_the_journey_hears_of_it(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    definition = journey(
        {"id": "call", "task": {"queue": "care-coordinators", "title": "Call {{ patient.name }}"}},
        {"id": "await-cancel", "wait_for": {"event": "task.cancelled", "timeout": "P2D"}},
        {"id": "sorry", "send": {"channel": "sms", "body": "We could not call: {{ event.data.outcome }}"}},
    )
    activities = build_activities(sessions, writing, journeys.env.client)
    async with journeys.make_worker(activities=activities):
        handle, enrollment_id, _ = await journeys.enroll(definition)
        await reach_step(handle, "await-cancel")
        chart = await chart_of(fhir_server, "Task", "requested")

        # The EHR cancels the Task; its notification reaches Aftercare (twice: the second is a no-op).
        cancelled = chart | {"status": "cancelled", "businessStatus": {"text": "moved away"}}
        await ehr_changes(journeys, fhir_server, cancelled, times=2)
        await journeys.finish(handle)

    async with sessions() as session:
        [task] = await list_tasks(session, status="cancelled")
    assert (task.outcome, task.completed_by) == ("moved away", f"fhir:Task/{chart['id']}")
    [message] = await journeys.messages(enrollment_id)
    assert message.body == "We could not call: moved away"
    assert await journeys.history(enrollment_id) == [
        ("call", "created"),
        ("await-cancel", "event"),
        ("sorry", "sent"),
    ]


async def test_a_campaigns_messages_become_communications_in_the_chart(
    time_skipping_env: WorkflowEnvironment,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    await store_patients(sessions, [synthetic_patient(i) for i in range(3)])
    async with sessions.begin() as session:
        await record_consent(session, ["cp-2"], "sms", "revoked", "front-desk", purpose="health_education")
    async with running_campaigns(time_skipping_env, sessions, writing, task_queue) as harness:
        result = await harness.finish(await harness.launch(await harness.publish()))
        async with asyncio.timeout(30):
            while len(fhir_server.store.of_type("Communication")) < 3:
                await asyncio.sleep(0.1)

    messages = {m.id: m for m in await harness.messages(result.run_id)}
    charts = {c["identifier"][0]["value"]: c for c in fhir_server.store.of_type("Communication")}
    assert set(charts) == set(messages)
    by_patient = {messages[key].patient_id: chart for key, chart in charts.items()}
    assert by_patient["cp-0"]["status"] == "completed"
    assert by_patient["cp-0"]["topic"] == {"text": "Flu season"}
    assert by_patient["cp-0"]["payload"] == [
        {"contentString": "Hi Pat0, flu shots are in at Springfield General. Reply STOP to opt out."}
    ]
    assert by_patient["cp-2"]["status"] == "not-done"  # held back: no consent
    assert by_patient["cp-2"]["statusReason"]["text"].startswith("the patient withdrew consent")


async def test_a_campaign_send_deferred_by_a_cap_is_a_communication_request_until_it_goes_out(
    time_skipping_env: WorkflowEnvironment,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    capped = writing.model_copy(update={"frequency_caps": [FrequencyCap(channel="sms", per_day=1)]})
    await store_patients(sessions, [synthetic_patient(0)])
    # cp-0 was texted 20 hours ago: the cap defers the campaign's text
    await texted_earlier(
        sessions, ["cp-0"], (await time_skipping_env.get_current_time()) - timedelta(hours=20)
    )
    async with running_campaigns(time_skipping_env, sessions, capped, task_queue) as harness:
        handle = await harness.launch(await harness.publish())
        planned = await chart_of(fhir_server, "CommunicationRequest", "active")
        assert fhir_server.store.of_type("Communication") == []
        result = await harness.finish(handle)
        done = await chart_of(fhir_server, "CommunicationRequest", "completed")
        sent = await chart_of(fhir_server, "Communication", "completed")

    key = f"campaign:{result.run_id}:cp-0"
    assert planned["identifier"] == [{"system": PLANNED_IDENTIFIER_SYSTEM, "value": key}]
    assert planned["reasonCode"] == [{"text": "Flu season"}]
    assert planned["occurrenceDateTime"]
    assert done["id"] == planned["id"]
    assert sent["basedOn"] == [
        {"type": "CommunicationRequest", "identifier": {"system": PLANNED_IDENTIFIER_SYSTEM, "value": key}}
    ]


def discharge(identifier: str = "risk-stay") -> dict[str, Any]:
    """A 14-day emergent stay of Abdul's that ended yesterday: LACE 7 + 3 and his conditions."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    return {
        "resourceType": "Encounter",
        "id": identifier,
        "status": "finished",
        "class": {"code": "IMP"},
        "priority": {"coding": [{"code": "EM"}]},
        "subject": {"reference": f"Patient/{ABDUL_PATIENT_ID}"},
        "period": {"start": (end - timedelta(days=14)).isoformat(), "end": end.isoformat()},
    }


async def test_a_risk_score_becomes_a_risk_assessment_once_per_version(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    writing: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_synthea_patient(sessions)
    activities = build_activities(sessions, writing, journeys.env.client)
    async with journeys.make_worker(activities=activities):
        ingested = await ingest_fhir_resources(
            sessions,
            journeys.starter,
            journeys.env.client,
            [discharge()],
            source="test",
            phone_region="US",
            write_back_queue=writing.temporal_task_queue,
        )
        assert ingested.triggered == 0
        async with sessions() as session:
            score = next(
                row for row in await scores_of(session, [ABDUL_PATIENT_ID]) if row.encounter_id == "risk-stay"
            )
        writer = journeys.env.client.get_workflow_handle_for(
            FhirWriteBackWorkflow.run,
            f"fhir-write-back-risk-risk-stay-lace-{int(score.as_of.timestamp() * 1_000_000)}",
        )
        await workflow_started(writer)
        async with journeys.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            written = await writer.result()
        # The same data again: the score keeps its version, nothing is written twice.
        again = await write_risk_back(
            sessions, journeys.env.client, writing.temporal_task_queue, [discharge()]
        )
        assert again == 0

    [chart] = fhir_server.store.of_type("RiskAssessment")
    assert written.reference == f"RiskAssessment/{chart['id']}"
    assert chart["identifier"] == [{"system": RISK_IDENTIFIER_SYSTEM, "value": "risk-stay/lace"}]
    assert (chart["status"], chart["subject"], chart["encounter"]) == (
        "final",
        {"reference": f"Patient/{ABDUL_PATIENT_ID}"},
        {"reference": "Encounter/risk-stay"},
    )
    assert chart["method"]["text"].startswith("LACE index")
    [prediction] = chart["prediction"]
    assert prediction["qualitativeRisk"]["coding"][0]["code"] == score_band(score.value)
    assert {"reference": "Encounter/risk-stay"} in chart["basis"]
    assert chart["note"][0]["text"].startswith(f"LACE {score.value}: L 7, A 3, C ")


def score_band(value: int) -> str:
    return "high" if value >= 10 else "moderate" if value >= 5 else "low"
