"""Event registrations under a rush, and check-in latency, on a fresh PostgreSQL database.

1,000 registrations for one session of 100 seats arrive at once through the registration code the API
runs (`aftercare/events/registrations.py`), on a pool the size of one API process (10 + 10): the time
until every one has its answer, and whether any seat was oversold or any patient registered twice.
Then every registered patient is checked in, 10 at a time: p50/p95/max per check-in transaction.

This measures the database side (row lock, constraint, one transaction each); the HTTP layer and the
delivery of `event.*` events to Temporal come on top.

    python bench/events.py [--registrations 1000] [--seats 100] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.db.engine import create_engine, session_factory
from aftercare.events.errors import EventConflict
from aftercare.events.registrations import check_in, register
from aftercare.events.store import create_event, publish_event
from models.event_api import EventIn, RegistrationIn, SessionIn
from models.event_tables import EventRegistration, EventSession
from models.tables import Patient
from tests.conftest import create_test_database, drop_test_database


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] if ordered else 0.0


async def setup(sessions: async_sessionmaker[AsyncSession], patients: int, seats: int) -> None:
    start = datetime.now(UTC) + timedelta(days=14)
    async with sessions.begin() as session:
        session.add_all(Patient(id=f"bench-{n}", version_id="1") for n in range(patients))
        await create_event(
            session,
            EventIn(
                key="bench-class",
                title="Bench class",
                timezone="UTC",
                sessions=[SessionIn(id="s1", start=start, end=start + timedelta(hours=1), capacity=seats)],
            ),
        )
        await publish_event(session, "bench-class")


async def rush(
    sessions: async_sessionmaker[AsyncSession], registrations: int
) -> tuple[float, dict[str, int]]:
    outcomes: dict[str, int] = {}

    async def one(n: int) -> None:
        try:
            async with sessions.begin() as session:
                change = await register(
                    session, "bench-class", RegistrationIn(patient_id=f"bench-{n}", session_id="s1")
                )
                status = change.registration.status
        except EventConflict:
            status = "conflict"
        outcomes[status] = outcomes.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(registrations)))
    return time.perf_counter() - started, outcomes


async def check_ins(sessions: async_sessionmaker[AsyncSession], concurrency: int = 10) -> list[float]:
    async with sessions() as session:
        ids = list(
            await session.scalars(
                select(EventRegistration.id).where(EventRegistration.status == "registered")
            )
        )
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(registration_id: str) -> None:
        async with gate:
            started = time.perf_counter()
            async with sessions.begin() as session:
                await check_in(session, "bench-class", registration_id)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(registration_id) for registration_id in ids))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=1000)
    parser.add_argument("--seats", type=int, default=100)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AFTERCARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    url = create_test_database(args.postgres)
    engine = create_engine(url, pool_size=10, pool_timeout=300)
    try:
        sessions = session_factory(engine)
        await setup(sessions, args.registrations, args.seats)
        settle, outcomes = await rush(sessions, args.registrations)
        async with sessions() as session:
            taken = await session.scalar(select(EventSession.seats_taken))
            doubles = await session.scalar(
                select(func.count()).select_from(
                    select(EventRegistration.patient_id)
                    .group_by(EventRegistration.patient_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
        latencies = await check_ins(sessions)
    finally:
        await engine.dispose()
        drop_test_database(args.postgres, url)
    print(f"rush: {args.registrations} registrations for {args.seats} seats at once, pool 10 + 10")
    rate = args.registrations / settle
    oversold = max(0, (taken or 0) - args.seats)
    print(f"  settled in {settle:.2f} s ({rate:.0f} registrations/s); outcomes {outcomes}")
    print(f"  seats taken {taken} of {args.seats}: oversold {oversold}; patients twice {doubles}")
    print(
        f"check-in ({len(latencies)}, 10 at a time): p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
