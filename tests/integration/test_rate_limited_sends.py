"""A provider's rate limit holds for a whole campaign: with `TWILIO_MAX_PER_SECOND` set, sends wait on
Twilio's own task queue, which the Temporal server paces for every worker together, and each call takes
its turn in a window shared through PostgreSQL. The moments the turns were taken show it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities, delivery_queue
from aftercare.settings import Settings
from models.tables import Message
from tests.conftest import SYNTHEA_BULK, suite_converter
from tests.helpers import busiest_second, with_twilio
from tests.integration.test_observation_to_sms import eventually

RATE = 4.0
CAMPAIGN = {
    "key": "flu-clinic-invite",
    "version": 1,
    "name": "Flu clinic invitation",
    "steps": [
        {
            "id": "invite",
            "send": {"channel": "sms", "body": "Hi {{ patient.given }}, flu shots this Saturday."},
        }
    ],
}


@pytest.fixture
def api_settings(settings: Settings, twilio_mock: str) -> Settings:
    return with_twilio(settings, "rate-limited", twilio_mock, twilio_max_per_second=RATE)


@pytest.fixture
async def workers(
    api_settings: Settings, dev_server: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    """Two full workers, as two machines would run them (each with its own connection to Temporal): each
    polls the main queue and Twilio's."""
    from worker import build_workers

    second = await Client.connect(
        dev_server.client.service_client.config.target_host, data_converter=suite_converter()
    )
    async with contextlib.AsyncExitStack() as stack:
        for client in (dev_server.client, second):
            for running in build_workers(
                client, api_settings, build_activities(sessions, api_settings, client)
            ):
                await stack.enter_async_context(running)
        yield


@pytest.mark.usefixtures("workers")
async def test_a_campaign_never_sends_faster_than_the_providers_limit(
    api: httpx.AsyncClient,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
) -> None:
    content = (SYNTHEA_BULK / "Patient.000.ndjson").read_bytes()
    imported = await api.post(
        "/v1/fhir/import",
        content=content,
        headers={"content-type": "application/fhir+ndjson"},
        params={"triggers": "false"},
    )
    patient_ids = [json.loads(line)["id"] for line in content.splitlines() if line.strip()]
    assert imported.status_code == 200
    assert (await api.post("/v1/journeys", json=CAMPAIGN)).status_code == 201
    batch = await api.post(
        "/v1/journeys/flu-clinic-invite/enrollments/batch",
        json={"patients": [{"patient_id": patient_id} for patient_id in patient_ids]},
    )
    assert batch.json()["created"] == len(patient_ids)

    async def all_settled() -> list[Message] | None:
        async with sessions() as session:
            rows = list(await session.scalars(select(Message)))
        settled = len(rows) == len(patient_ids) and all(row.status in ("queued", "skipped") for row in rows)
        return rows if settled else None

    messages: list[Message] = [m for m in await eventually(all_settled, timeout=60) if m.status == "queued"]
    # Synthea's deceased patients are never contacted; everyone else is.
    assert len(messages) == 10
    called = sorted(message.attempted_at for message in messages if message.attempted_at is not None)
    # However the two workers interleave, no second holds more calls to Twilio than the limit, so ten
    # texts at four a second need three windows.
    assert len(called) == 10
    assert busiest_second(called) <= RATE
    assert (called[-1] - called[0]).total_seconds() >= 2.0
    assert {message.provider for message in messages} == {"twilio"}

    enrollment_id = messages[0].enrollment_id
    history = await dev_server.client.get_workflow_handle(f"enrollment-{enrollment_id}").fetch_history()
    queues = [
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert delivery_queue(api_settings, "twilio") in queues
