"""A worker killed while discharges arrive over MLLP loses nothing and sends nothing twice.

The acknowledgement follows the commit and the hand-off to Temporal, not the journey's run, so the
listener goes on answering `AA` while no worker is alive; the worker that takes over finishes every
journey, and each patient gets their welcome once. The worker is a real process (`python worker.py`),
killed with SIGKILL once the first welcome is recorded, while the others are being started and sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.hl7v2.server import MllpListener
from aftercare.settings import Settings
from models.adt_tables import AdtMessage
from models.tables import Enrollment
from tests.integration.test_adt_feed import (
    JOURNEY,
    YAML,
    build_intake,
    count,
    discharge_of,
    msa,
    outbox,
    send,
)
from tests.integration.test_observation_to_sms import eventually
from tests.integration.test_worker_crash import WorkerProcess, worker_process  # noqa: F401

PATIENTS = 12


@pytest.fixture
async def mllp_port(
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
    api: httpx.AsyncClient,
) -> AsyncIterator[int]:
    """A listener on a free port handing journeys to the API's task queue, the journey published."""
    assert (await api.post("/v1/journeys", content=JOURNEY, headers=YAML)).status_code == 201
    server = await MllpListener(build_intake(api_settings, sessions, dev_server)).start("127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _welcomes(api: httpx.AsyncClient, at_least: int) -> list[dict[str, Any]] | None:
    items = await outbox(api)
    return items if len(items) >= at_least else None


@pytest.mark.usefixtures("empty_database")
async def test_killing_the_worker_while_discharges_arrive_loses_and_duplicates_nothing(
    mllp_port: int,
    worker_process: WorkerProcess,  # noqa: F811
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    worker_process.start()
    half = PATIENTS // 2
    first = await send(mllp_port, *(discharge_of(number) for number in range(half)))
    await eventually(lambda: _welcomes(api, 1), timeout=60)
    worker_process.kill()

    second = await send(mllp_port, *(discharge_of(number) for number in range(half, PATIENTS)))

    assert [msa(ack) for ack in first + second] == [("AA", f"KILL{number}") for number in range(PATIENTS)]
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == PATIENTS
    worker_process.start()
    await eventually(lambda: _welcomes(api, PATIENTS), timeout=90)
    await asyncio.sleep(3)  # time for a second send of any welcome, were there one
    sent = await outbox(api)
    assert len(sent) == PATIENTS
    assert len({message["patient_id"] for message in sent}) == PATIENTS
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == PATIENTS
