"""Write-back: a journey's message becomes a Communication on the FHIR test server, written by its own
workflow (the journey does not wait for it), once however often it is written; a discharge's risk score
becomes a RiskAssessment, once per version of the score."""

from __future__ import annotations

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
from aftercare.fhir.outreach import (
    MESSAGE_IDENTIFIER_SYSTEM,
    TASK_IDENTIFIER_SYSTEM,
)
from aftercare.fhir.risk_assessment import RISK_IDENTIFIER_SYSTEM
from aftercare.settings import Settings
from aftercare.store.risk_scores import scores_of
from aftercare.store.tasks import get_task, list_tasks
from models.temporal import WriteBackMessageInput
from tests.conftest import ABDUL_PATIENT_ID
from tests.fhir_server import FhirTestServer, running_fhir_server
from tests.helpers import load_synthea_patient
from tests.workflows.fixtures import JourneyHarness, reach_step, started_time_skipping_env
from tests.workflows.test_enrollment import journey
from workflows.fhir_write_back import FhirWriteBackWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own: waiting on a write-back workflow with time skipping
    unlocked leaves the server's clock in a state the next modules' journeys do not expect."""
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
        done = fhir_server.put(chart | {"status": "completed", "businessStatus": {"text": "reached"}})
        await ingest_fhir_resources(
            sessions,
            journeys.starter,
            journeys.env.client,
            [done],
            source="notification:default",
            phone_region="US",
        )
        await journeys.finish(handle)

    async with sessions() as session:
        completed = await get_task(session, task.id)
    assert completed is not None
    assert (completed.status, completed.outcome) == ("completed", "reached")
    assert completed.completed_by == f"fhir:Task/{chart['id']}"
    [message] = await journeys.messages(enrollment_id)
    assert message.body == "Your care team called: reached"


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
