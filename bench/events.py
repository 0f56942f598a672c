"""Event registrations under a rush, check-in latency, and a change's fan-out to every registration,
on a fresh PostgreSQL database.

1. Rush: `--registrations` registrations for one session of `--seats` seats arrive at once through the
   registration code the API runs (`aftercare/events/registrations.py`, the scenario of
   `tests/events/test_capacity.py`), on a pool the size of one API process (10 + 10): the time until
   every one has its answer, and whether any seat was oversold or any patient registered twice.
2. Check-in: every registered patient is checked in, 10 at a time, as the API does it (the change and
   its outbox row in one transaction, answered at the commit; its `event.checked_in` delivered right
   after): p50/p95/max to the answer, p50/p95 to the delivery, and this process's CPU per check-in.
3. Fan-out: a session of `--fanout` registrations is moved by an hour, as `PATCH
   /v1/events/{key}/sessions/{id}` does: the change and one outbox row per registration
   (`event.changed`, `aftercare/events/outbox.py`) commit in one transaction (rows/s), then the outbox
   is worked off (notices/s, and this process's CPU time per notice: each `event.changed` claimed
   once, looked up for listening journeys, marked delivered, its row deleted; 500 notices a batch).
   No journey listens here, so no Temporal call is made: this is the database side of a reminder
   wave; the messages the journeys then send come on top.

    python bench/events.py [--registrations 1000] [--seats 100] [--fanout 10000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.events.outbox import EffectRunner, record_effects, run_effects
from aftercare.events.registrations import change_session, check_in
from models.event_api import SessionChange
from models.event_tables import EventEffect, EventRegistration, EventSession
from tests.conftest import create_test_database, drop_test_database
from tests.events.scenario import (
    EVENT,
    SESSION,
    a_published_event,
    oversold_and_doubled,
    patient_ids,
    register_at_once,
)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] if ordered else 0.0


async def a_runner(sessions: async_sessionmaker[AsyncSession]) -> EffectRunner:
    """What the outbox needs; no journey listens here, so a Temporal client that never connects will do."""
    temporal = await Client.connect("127.0.0.1:1", lazy=True)
    return EffectRunner(sessions, temporal, EnrollmentStarter(sessions, temporal, "bench"), "bench")


async def check_ins(
    sessions: async_sessionmaker[AsyncSession], concurrency: int = 10
) -> tuple[list[float], list[float], float]:
    """Check in every registered patient as the API does: the change and its outbox row in one
    transaction, answered at the commit, then its `event.checked_in` delivered (after the answer).
    Each one's seconds to the answer and to the delivery, and this process's CPU seconds for all."""
    async with sessions() as session:
        ids = list(
            await session.scalars(
                select(EventRegistration.id).where(EventRegistration.status == "registered")
            )
        )
    runner = await a_runner(sessions)
    answered: list[float] = []
    delivered: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(registration_id: str) -> None:
        async with gate:
            started = time.perf_counter()
            async with sessions.begin() as session:
                change = await check_in(session, EVENT, registration_id)
                effects = await record_effects(session, EVENT, change.offers, change.notices)
            answered.append(time.perf_counter() - started)
            await run_effects(runner, effects)
            delivered.append(time.perf_counter() - started)

    cpu = time.process_time()
    await asyncio.gather(*(one(registration_id) for registration_id in ids))
    return answered, delivered, time.process_time() - cpu


async def fan_out(
    sessions: async_sessionmaker[AsyncSession], count: int
) -> tuple[float, float, float, float, int]:
    """Move the session with `count` live registrations; seconds (wall, then this process's CPU) to
    commit the change with its outbox, the same to work the outbox off, and the rows left (0 when every
    notice was delivered)."""
    async with sessions.begin() as session:
        # the registrations of the rush, checked in or not, all live again for the wave
        await session.execute(update(EventRegistration).values(status="registered", checked_in_at=None))
        await session.execute(update(EventSession).values(capacity=count, seats_taken=count))
    started, cpu = time.perf_counter(), time.process_time()
    async with sessions.begin() as session:
        sitting = await session.scalar(select(EventSession).where(EventSession.id == SESSION))
        assert sitting is not None
        moved = SessionChange(
            start=sitting.start_at + timedelta(hours=1), end=sitting.end_at + timedelta(hours=1)
        )
        notices, offers = await change_session(session, EVENT, SESSION, moved)
        effects = await record_effects(session, EVENT, offers, notices)
    written, written_cpu = time.perf_counter() - started, time.process_time() - cpu
    runner = await a_runner(sessions)
    started, cpu = time.perf_counter(), time.process_time()
    await run_effects(runner, effects)
    delivered, delivered_cpu = time.perf_counter() - started, time.process_time() - cpu
    async with sessions() as session:
        left = await session.scalar(select(func.count()).select_from(EventEffect))
    return written, written_cpu, delivered, delivered_cpu, left or 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=1000)
    parser.add_argument("--seats", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=10000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AFTERCARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    url = create_test_database(args.postgres)
    engine = create_engine(url, pool_size=10, pool_timeout=300)
    crowd = patient_ids(max(args.registrations, args.fanout), prefix="bench")
    try:
        sessions = session_factory(engine)
        await a_published_event(sessions, args.seats, crowd, days_ahead=14)
        started = time.perf_counter()
        outcomes = await register_at_once(sessions, crowd[: args.registrations])
        settle = time.perf_counter() - started
        oversold, doubled = await oversold_and_doubled(sessions, args.seats)
        latencies, notified, check_in_cpu = await check_ins(sessions)
        # the fan-out's crowd: the rush's registrations, and more (written in one statement: setting
        # up, not measured) until there are --fanout
        async with sessions.begin() as session:
            await session.execute(
                insert(EventRegistration),
                [
                    {"id": f"reg_bench_{n}", "event_key": EVENT, "session_id": SESSION, "patient_id": patient}
                    | {"status": "registered"}
                    for n, patient in enumerate(crowd[args.registrations : args.fanout])
                ],
            )
        written, written_cpu, delivered, delivered_cpu, left = await fan_out(sessions, args.fanout)
    finally:
        await engine.dispose()
        drop_test_database(args.postgres, url)
    print(f"load average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"rush: {args.registrations} registrations for {args.seats} seats at once, pool 10 + 10")
    rate = args.registrations / settle
    print(f"  settled in {settle:.2f} s ({rate:.0f} registrations/s); outcomes {dict(outcomes)}")
    print(f"  oversold {oversold}; patients twice {doubled}")
    print(
        f"check-in ({len(latencies)}, 10 at a time): p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms to the answer; "
        f"p50 {statistics.median(notified) * 1000:.1f} ms, p95 {percentile(notified, 0.95) * 1000:.1f} ms "
        f"to event.checked_in delivered; CPU {check_in_cpu * 1000 / len(latencies):.1f} ms a check-in"
    )
    print(f"fan-out: a session of {args.fanout} registrations moved")
    print(
        f"  change + {args.fanout} outbox rows committed in {written:.2f} s ({args.fanout / written:.0f}/s), "
        f"CPU {written_cpu * 1e6 / args.fanout:.0f} µs a row"
    )
    print(
        f"  outbox worked off in {delivered:.2f} s ({args.fanout / delivered:.0f} notices/s), "
        f"CPU {delivered_cpu:.2f} s ({delivered_cpu * 1e6 / args.fanout:.0f} µs a notice); rows left {left}"
    )


if __name__ == "__main__":
    asyncio.run(main())
