"""The effects of an event change (its offers' workflows, its patient events) are never lost: with the
Temporal server stopped, a registration still commits (201) and its effects wait in the outbox with the
reason; when the server is back, the API's retry loop does them, once each, and empties the outbox."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.devstack.temporal_server import dev_server_tuning_args, temporal_cli
from aftercare.settings import Settings
from models.event_tables import EventEffect
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from models.tables import TriggerEvent
from tests.api.test_events import patients, published, register
from tests.conftest import AUTH_HEADERS, serve, suite_converter

pytestmark = pytest.mark.usefixtures("empty_database")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[EventEffect]:
    async with sessions() as session:
        return list(await session.scalars(select(EventEffect).order_by(EventEffect.id)))


async def emptied(sessions: async_sessionmaker[AsyncSession], limit: float = 60) -> None:
    async with asyncio.timeout(limit):
        while await outbox(sessions):
            await asyncio.sleep(0.25)


@pytest.fixture
def temporal_port() -> int:
    return free_port()


@pytest.fixture
async def api_while_temporal_is_down(
    api_settings: Settings, temporal_port: int, empty_database: AsyncEngine
) -> AsyncIterator[object]:
    """The API, configured for a Temporal server that is not running (yet)."""
    from api.app import create_app

    settings = api_settings.model_copy(update={"temporal_address": f"127.0.0.1:{temporal_port}"})
    async with serve(create_app(settings), AUTH_HEADERS) as api:
        yield api


async def test_a_registration_commits_while_temporal_is_down_and_its_effects_are_done_when_it_returns(
    api_while_temporal_is_down: object,
    temporal_port: int,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    import httpx

    api = api_while_temporal_is_down
    assert isinstance(api, httpx.AsyncClient)
    await patients(sessions, "p-1", "p-2")
    await published(api, capacity=1)

    first = await register(api, "p-1")
    second = await register(api, "p-2")
    assert (first.status_code, first.json()["status"]) == (201, "registered")
    assert (second.status_code, second.json()["status"]) == (201, "waitlisted")
    seat = first.json()["registration_id"]
    waiting = second.json()["registration_id"]
    cancelled = await api.post(f"/v1/events/diabetes-class/registrations/{seat}/cancel")
    assert cancelled.status_code == 200  # the seat goes to p-2: an offer to watch, events to deliver

    # The registrations' events reached no journey (none listens) and needed no Temporal: done. The
    # offer needs its workflow: it waits, and p-2's `event.offered` waits behind it (each patient's
    # effects keep their order). p-1's `event.cancelled` needs no Temporal either: done, or waiting
    # with the rest if the outage was seen first.
    pending = await outbox(sessions)
    mine = [(row.kind, row.patient_id) for row in pending if row.patient_id == "p-2"]
    assert mine == [("offer", "p-2"), ("notice", "p-2")]
    assert {row.last_error for row in pending} == {"temporal unavailable"}
    assert all(row.attempts >= 1 for row in pending)

    env = await WorkflowEnvironment.start_local(
        port=temporal_port,
        data_converter=suite_converter(),
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
        dev_server_extra_args=dev_server_tuning_args(),
    )
    try:
        await emptied(sessions)
        offer = env.client.get_workflow_handle(f"event-offer-{waiting}-1")
        assert (await offer.describe()).workflow_type == "EventOffer"
        await offer.terminate("test over")
    finally:
        await env.shutdown()

    async with sessions() as session:
        delivered = list(await session.scalars(select(TriggerEvent).where(TriggerEvent.type.like("event.%"))))
    assert sorted((event.type, event.patient_id) for event in delivered) == [
        ("event.cancelled", "p-1"),
        ("event.offered", "p-2"),
        ("event.registered", "p-1"),
        ("event.waitlisted", "p-2"),
    ]  # each once
    assert all(event.processed_at is not None for event in delivered)
