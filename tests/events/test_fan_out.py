"""A change's notices to every registration go out in batches: the database work of a batch is a
fixed handful of statements whatever its size, each notice is delivered once (a repeat changes
nothing), and on the real stack every registered patient enters the journey the notice starts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.delivery import notice_batches
from aftercare.events.outbox import Effect, EffectRunner, record_effects, run_effects
from aftercare.events.registrations import change_session
from models.event_api import SessionChange
from models.event_tables import EventEffect, EventRegistration, EventSession
from models.event_temporal import EventNoticeModel
from models.tables import Enrollment, TriggerEvent
from tests.api.test_events import SOON, patients, published, register
from tests.events.scenario import EVENT, SESSION, a_published_event, patient_ids

pytestmark = pytest.mark.usefixtures("empty_database")


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def moved_with_outbox(
    sessions: async_sessionmaker[AsyncSession], count: int, hours: int
) -> list[Effect]:
    """Move the session of `count` registrations by `hours`: the change and its outbox rows."""
    async with sessions.begin() as session:
        sitting = await session.scalar(select(EventSession).where(EventSession.id == SESSION))
        assert sitting is not None
        moved = SessionChange(
            start=sitting.start_at + timedelta(hours=hours), end=sitting.end_at + timedelta(hours=hours)
        )
        notices, offers = await change_session(session, EVENT, SESSION, moved)
        return list(await record_effects(session, EVENT, offers, notices))


async def registered(sessions: async_sessionmaker[AsyncSession], patients: list[str]) -> None:
    async with sessions.begin() as session:
        session.add_all(
            EventRegistration(
                id=f"reg_{p}", event_key=EVENT, session_id=SESSION, patient_id=p, status="registered"
            )
            for p in patients
        )


async def test_a_batch_of_notices_costs_the_same_statements_whatever_its_size_and_each_is_delivered_once(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    crowd = patient_ids(260, prefix="fan")
    await a_published_event(sessions, 300, crowd, days_ahead=14)
    # No journey listens and no segment refreshes: nothing reaches Temporal (a client that never connects).
    temporal = await Client.connect("127.0.0.1:1", lazy=True)
    runner = EffectRunner(sessions, temporal, EnrollmentStarter(sessions, temporal, "fan-out"), "fan-out")

    await registered(sessions, crowd[:20])
    small = await moved_with_outbox(sessions, 20, 1)
    with counted(engine) as for_20:
        assert await run_effects(runner, small) == 20
    await registered(sessions, crowd[20:260])
    large = await moved_with_outbox(sessions, 260, 2)
    with counted(engine) as for_260:
        assert await run_effects(runner, large) == 260

    assert len(for_260) == len(for_20)  # a batch's statements do not grow with it
    async with sessions() as session:
        delivered = list(await session.scalars(select(TriggerEvent)))
        left = await session.scalar(select(func.count()).select_from(EventEffect))
    assert len(delivered) == 280
    assert all(row.processed_at is not None for row in delivered)
    assert left == 0

    # The same notices again (a retry after a crash): each id is known, nothing new is written.
    with counted(engine) as again:
        assert await run_effects(runner, large) == 260
    assert not [statement for statement in again if statement.lstrip().upper().startswith("UPDATE TRIGGER")]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TriggerEvent)) == 280


def test_batches_keep_each_patients_notices_in_order_and_hold_a_patient_once() -> None:
    notices = [
        EventNoticeModel(id=f"{patient}-{n}", type="event.changed", patient_id=patient)
        for n in range(3)
        for patient in ("a", "b", "c", "d", "e")
    ]
    notices.append(EventNoticeModel(id="a-3", type="event.changed", patient_id="a"))

    batches = notice_batches(notices, size=4)

    assert sorted(n.id for batch in batches for n in batch) == sorted(n.id for n in notices)
    for batch in batches:
        assert len(batch) <= 4
        assert len({n.patient_id for n in batch}) == len(batch)
    for patient in "abcde":
        order = [n.id for batch in batches for n in batch if n.patient_id == patient]
        assert order == sorted(order)


MOVED_JOURNEY = {
    "key": "session-moved",
    "version": 1,
    "name": "Session moved",
    "entry": {"event": {"type": "event.changed"}},
    "reentry": "always",
    "steps": [{"id": "noted", "end": {"outcome": "noted"}}],
}


@pytest.mark.usefixtures("worker")
async def test_moving_a_session_enters_every_registered_patient_in_the_journey_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    crowd = [f"pt-{n}" for n in range(40)]
    await patients(sessions, *crowd)
    assert (await api.post("/v1/journeys", json=MOVED_JOURNEY)).status_code == 201
    await published(api, capacity=40)
    for patient in crowd:
        assert (await register(api, patient)).status_code == 201
    later = SOON + timedelta(days=1)

    moved = await api.patch(
        "/v1/events/diabetes-class/sessions/morning",
        json={"start": later.isoformat(), "end": (later + timedelta(hours=2)).isoformat()},
    )

    assert moved.status_code == 200
    async with asyncio.timeout(60):
        while True:
            async with sessions() as session:
                entered = list(
                    await session.execute(
                        select(Enrollment.patient_id, Enrollment.trigger_key).where(
                            Enrollment.journey_key == "session-moved"
                        )
                    )
                )
                left = await session.scalar(select(func.count()).select_from(EventEffect))
            if len(entered) >= len(crowd) and not left:
                break
            await asyncio.sleep(0.25)
    assert sorted(patient for patient, _ in entered) == sorted(crowd)  # each once
    assert all((key or "").startswith("event:event.changed:") for _, key in entered)


async def test_a_notice_that_cannot_be_delivered_waits_alone_and_the_rest_of_its_batch_goes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    crowd = patient_ids(30, prefix="mixed")
    await a_published_event(sessions, 30, crowd, days_ahead=14)
    temporal = await Client.connect("127.0.0.1:1", lazy=True)
    runner = EffectRunner(sessions, temporal, EnrollmentStarter(sessions, temporal, "fan-out"), "fan-out")
    await registered(sessions, crowd)
    effects = await moved_with_outbox(sessions, 30, 1)
    async with sessions.begin() as session:  # one row whose payload is not a notice
        [broken_id] = await session.scalars(
            insert(EventEffect).returning(EventEffect.id),
            [{"kind": "notice", "event_key": EVENT, "patient_id": "mixed-x", "payload": {"id": "x"}}],
        )
    broken = Effect(broken_id, "notice", EVENT, "mixed-x", {"id": "x"})

    assert await run_effects(runner, [*effects, broken]) == 30

    async with sessions() as session:
        [left] = list(await session.scalars(select(EventEffect)))
        delivered = await session.scalar(select(func.count()).select_from(TriggerEvent))
    assert (left.id, left.attempts, left.last_error) == (broken_id, 1, "ValidationError")
    assert left.next_attempt_at > datetime.now(UTC)
    assert delivered == 30
