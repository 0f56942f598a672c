"""Enrollment projections kept in step with their workflows, on the real dev server."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.enrollments import ReconcileActivities
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from aftercare.store.journeys import get_journey
from aftercare.temporal.schedules import ensure_schedules
from models.tables import FhirNotification
from models.temporal import EnrollmentTrigger, ReconcileInput
from models.workflow_names import RECONCILE_SCHEDULE_ID, REFRESH_SEGMENTS_SCHEDULE_ID
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

LISTENING = {
    "key": "listening",
    "version": 1,
    "name": "Listening",
    "steps": [
        {"id": "listen", "wait_for": {"event": "sms.reply", "timeout": "P7D"}},
        {"id": "hello", "send": {"channel": "sms", "body": "Hello"}},
    ],
}


async def enrollment(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


@pytest.fixture
def reconciler(
    sessions: async_sessionmaker[AsyncSession], dev_server: WorkflowEnvironment, api_settings: Settings
) -> ReconcileActivities:
    starter = EnrollmentStarter(sessions, dev_server.client, api_settings.temporal_task_queue)
    return ReconcileActivities(sessions, starter, dev_server.client, api_settings.temporal_task_queue)


async def test_a_workflow_terminated_from_the_temporal_ui_closes_its_enrollment(
    api: httpx.AsyncClient, dev_server: WorkflowEnvironment, reconciler: ReconcileActivities
) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json=LISTENING)
    enrollment_id = (
        await api.post("/v1/journeys/listening/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    ).json()["enrollment_id"]
    handle = dev_server.client.get_workflow_handle(f"enrollment-{enrollment_id}")

    async def listening() -> bool:
        return (await enrollment(api, enrollment_id))["current_step"] == "listen"

    await eventually(listening)
    await handle.terminate(reason="operator clean-up")

    async def reconciled() -> int:
        result = await ActivityEnvironment().run(reconciler.reconcile_enrollments, ReconcileInput())
        return result.closed

    assert await eventually(reconciled) == 1  # visibility is eventually consistent
    closed = await enrollment(api, enrollment_id)
    assert (closed["status"], closed["outcome"]) == ("cancelled", "closed outside Aftercare")


async def test_an_enrollment_allocated_but_never_started_is_started(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
    api_settings: Settings,
    reconciler: ReconcileActivities,
) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    await api.post("/v1/journeys", json={**LISTENING, "key": "hello", "steps": LISTENING["steps"][1:]})
    async with sessions() as session:
        journey = await get_journey(session, "hello")
    assert journey is not None
    starter = EnrollmentStarter(sessions, dev_server.client, api_settings.temporal_task_queue)
    async with sessions.begin() as session:  # the API died between this commit and the workflow start
        allocation = await starter.allocate(
            session, journey, ABDUL_PATIENT_ID, EnrollmentTrigger(kind="manual")
        )
    enrollment_id = allocation.outcome.enrollment_id
    assert enrollment_id is not None

    result = await ActivityEnvironment().run(
        reconciler.reconcile_enrollments, ReconcileInput(stale_after_seconds=0)
    )
    assert result.restarted == 1

    async def completed() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] == "completed" else None

    await eventually(completed)
    assert len((await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]) == 1


async def test_the_reconciliation_schedule_is_created_once(
    dev_server: WorkflowEnvironment, api_settings: Settings
) -> None:
    # Workers other tests started on the shared dev server may have created them already.
    for schedule_id in (RECONCILE_SCHEDULE_ID, REFRESH_SEGMENTS_SCHEDULE_ID):
        with contextlib.suppress(RPCError):
            await dev_server.client.get_schedule_handle(schedule_id).delete()
    first = await ensure_schedules(dev_server.client, api_settings.temporal_task_queue)
    second = await ensure_schedules(dev_server.client, api_settings.temporal_task_queue)
    assert (first, second) == ([RECONCILE_SCHEDULE_ID, REFRESH_SEGMENTS_SCHEDULE_ID], [])
    description = await dev_server.client.get_schedule_handle(RECONCILE_SCHEDULE_ID).describe()
    assert description.schedule.spec.intervals[0].every.total_seconds() == 300
    segments = await dev_server.client.get_schedule_handle(REFRESH_SEGMENTS_SCHEDULE_ID).describe()
    assert segments.schedule.spec.intervals[0].every.total_seconds() == 900


async def test_a_notification_whose_workflow_never_started_is_redriven_and_parked_when_it_cannot_finish(
    sessions: async_sessionmaker[AsyncSession], reconciler: ReconcileActivities
) -> None:
    # As if Temporal was down when an id-only notification arrived: recorded, its workflow never started.
    async with sessions.begin() as session:
        session.add(
            FhirNotification(
                id="lost-notification",
                source_key="default",
                kind="id-only",
                references=[f"Patient/{ABDUL_PATIENT_ID}"],
                received_at=datetime.now(UTC) - timedelta(minutes=10),
            )
        )

    result = await ActivityEnvironment().run(reconciler.reconcile_enrollments, ReconcileInput())

    assert result.notifications_redriven == 1

    async def parked() -> FhirNotification | None:
        async with sessions() as session:
            row = await session.get(FhirNotification, "lost-notification")
        return row if row is not None and row.status == "parked" else None

    # No FHIR server is configured in this test, so the work cannot finish: it is kept with the reason.
    row = await eventually(parked)
    assert "FHIR_BASE_URL" in (row.error or "")
