"""Completing a care task through the API writes its completion back to the FHIR source, when
outreach is written back: the API starts the task's `FhirWriteBack` workflow after the commit."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from aftercare.store.tasks import create_task
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, serve


async def open_task(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions.begin() as session:
        return await create_task(
            session,
            {
                "id": str(uuid.uuid4()),
                "idempotency_key": f"test:{uuid.uuid4()}",
                "queue": "care-coordinators",
                "priority": "normal",
                "title": "Call the patient",
                "description": None,
                "patient_id": ABDUL_PATIENT_ID,
                "enrollment_id": None,
                "journey_key": None,
                "step_id": None,
                "due_at": None,
            },
        )


async def test_completing_a_task_starts_writing_its_completion_to_the_chart(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from api.app import create_app

    writing = api_settings.model_copy(
        update={"fhir_base_url": "http://127.0.0.1:9/fhir", "fhir_write_back": True}
    )
    task_id = await open_task(sessions)
    async with serve(create_app(writing, temporal=dev_server.client), AUTH_HEADERS) as api:
        answer = await api.post(f"/v1/tasks/{task_id}/complete", json={"outcome": "reached"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"

    await assert_write_back_started(dev_server, f"fhir-write-back-task-{task_id}-completed", writing)


async def assert_write_back_started(
    dev_server: WorkflowEnvironment, workflow_id: str, settings: Settings
) -> None:
    """A `FhirWriteBack` workflow runs under that id on the worker's queue (terminated: no worker here)."""
    handle = dev_server.client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    try:
        assert description.workflow_type == "FhirWriteBack"
        assert description.task_queue == settings.temporal_task_queue
    finally:
        await handle.terminate("test over")


async def test_without_write_back_completing_a_task_writes_nothing(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from api.app import create_app

    task_id = await open_task(sessions)
    async with serve(create_app(api_settings, temporal=dev_server.client), AUTH_HEADERS) as api:
        answer = await api.post(f"/v1/tasks/{task_id}/complete", json={"outcome": "reached"})
    assert answer.status_code == 200
    handle = dev_server.client.get_workflow_handle(f"fhir-write-back-task-{task_id}-completed")
    with pytest.raises(RPCError) as missing:
        await handle.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
