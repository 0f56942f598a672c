"""The `survey` step on the time-skipping server: the answers recorded through the page's path become
`survey.completed`, the branch reads them with `answer()`, and where outreach is written back the
QuestionnaireResponse lands on the FHIR test server, written once by its own workflow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities
from aftercare.enrollment.event_triggers import deliver_event
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from aftercare.store.tasks import list_tasks
from aftercare.surveys.form import parse_answers
from aftercare.surveys.questionnaires import save_questionnaire
from aftercare.surveys.responses import record_response
from models.survey_tables import Survey
from tests.conftest import ABDUL_PATIENT_ID, REPO
from tests.fhir_server import FhirTestServer, running_fhir_server
from tests.workflows.fixtures import JourneyHarness, reach_step, started_time_skipping_env, workflow_started
from tests.workflows.test_enrollment import journey
from workflows.fhir_write_back import FhirWriteBackWorkflow

pytestmark = pytest.mark.usefixtures("empty_database")

CHECK_IN = json.loads((REPO / "journeys" / "questionnaires" / "post-discharge-48h.json").read_text())
SURVEY_JOURNEY = journey(
    {"id": "check-in", "survey": {"questionnaire": CHECK_IN["url"], "expires": "P2D", "channel": "sms"}},
    {
        "id": "route",
        "branch": [
            {
                "when": "%event.type = 'survey.completed' and %event.data.answer('pain-score') >= 7",
                "goto": "call",
            },
            {"otherwise": "done"},
        ],
    },
    {"id": "call", "task": {"queue": "care-coordinators", "title": "Call about pain"}},
    {"id": "done", "end": {"outcome": "completed"}},
)


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of this module's own (waiting on a write-back workflow with time skipping unlocked)."""
    async with started_time_skipping_env() as env:
        yield env


@pytest.fixture
async def fhir_server() -> AsyncIterator[FhirTestServer]:
    async with running_fhir_server() as server:
        yield server


async def answer(
    sessions: async_sessionmaker[AsyncSession],
    starter: EnrollmentStarter,
    env: WorkflowEnvironment,
    pain: str,
) -> str:
    """Answer the one open survey as the page does: record the response, then deliver the event."""
    async with sessions.begin() as session:
        [survey] = (await session.scalars(select(Survey))).all()
        fields = {
            "q.overall": ["1"],
            "q.pain-score": [pain],
            "q.pain-where": ["back"],
            "q.medicines": ["true"],
        }
        parsed = parse_answers(CHECK_IN, fields)
        assert parsed.errors == {}
        recorded = await record_response(session, survey, CHECK_IN, parsed)
    await deliver_event(
        sessions,
        env.client,
        starter,
        event_type="survey.completed",
        patient_id=ABDUL_PATIENT_ID,
        data=recorded.event_data,
        event_id=f"survey.completed:{survey.id}",
    )
    return recorded.response_id


async def test_the_answers_branch_the_journey_and_are_written_back_as_a_questionnaire_response(
    journeys: JourneyHarness,
    fhir_server: FhirTestServer,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    writing = settings.model_copy(
        update={
            "fhir_base_url": fhir_server.base_url,
            "fhir_write_back": True,
            "temporal_task_queue": task_queue,
        }
    )
    async with sessions.begin() as session:
        await save_questionnaire(session, CHECK_IN)
    handle, enrollment_id, _ = await journeys.enroll(SURVEY_JOURNEY)
    async with journeys.make_worker(activities=build_activities(sessions, writing, journeys.env.client)):
        await reach_step(handle, "check-in")
        await _sent(journeys, enrollment_id)
        response_id = await answer(sessions, journeys.starter, journeys.env, pain="9")
        await journeys.finish(handle)
        writer = journeys.env.client.get_workflow_handle_for(
            FhirWriteBackWorkflow.run, f"fhir-write-back-survey-response-{response_id}"
        )
        await workflow_started(writer)
        async with journeys.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            written = await writer.result()

    async with sessions() as session:
        tasks = await list_tasks(session, queue="care-coordinators")
    [chart] = fhir_server.store.of_type("QuestionnaireResponse")
    assert [task.title for task in tasks] == ["Call about pain"]
    assert written.reference == f"QuestionnaireResponse/{chart['id']}"
    assert chart["identifier"] == {"system": "urn:aftercare:survey-response", "value": response_id}
    assert chart["questionnaire"] == f"{CHECK_IN['url']}|1"
    assert chart["subject"] == {"reference": f"Patient/{ABDUL_PATIENT_ID}"}
    assert [item["linkId"] for item in chart["item"]] == ["overall", "pain-score", "pain-where", "medicines"]
    assert [step for step, _ in await journeys.history(enrollment_id)] == [
        "check-in",
        "check-in",
        "route",
        "call",
        "done",
    ]


async def _sent(journeys: JourneyHarness, enrollment_id: str) -> None:
    """Wait for the survey's link to go out."""
    async with asyncio.timeout(15):
        while not (messages := await journeys.messages(enrollment_id)):
            await asyncio.sleep(0.1)
    [message] = messages
    assert "/s/" in (message.body or "")
    assert message.purpose == "surveys"
