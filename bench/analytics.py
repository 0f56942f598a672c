"""Analytics at scale: every analytics query's latency over millions of facts, the rollup triggers'
cost on the send path, and how soon a fact shows in the analytics.

    python bench/analytics.py                                  # 10M messages, 1M enrollments
    python bench/analytics.py --messages 200000 --enrollments 20000 --rate 500 --duration 10

It creates a fresh database, migrates it and writes the facts in SQL (`generate_series`) with the
rollup triggers on, as the application would: patients in two facilities, enrollments of three journeys
(running, completed, exited) with their step records, messages over 90 days with their fates, bounce
events and guardrail decisions. Then:
- **queries**: each analytics read (funnel, messages by each grouping, daily and hourly series) run
  `--repeat` times; p50 and p95 (target p95 < 300 ms);
- **ingest overhead**: the send path's writes (a message recorded, then sent, then delivered, each
  its own transaction) timed with the triggers and with them disabled (target < 5 %);
- **freshness**: messages written at `--rate` per second for `--duration` seconds while a reader polls
  the messages' totals; the time from each commit to the reader seeing it (target p99 < 5 s).
The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.analytics.funnel import journey_funnel
from aftercare.analytics.messages import message_rows
from aftercare.analytics.series import journey_series, message_series
from aftercare.db.engine import create_engine, normalise_database_url, session_factory
from aftercare.db.migrate import libpq_dsn, upgrade

QUERY_TARGET_MS = 300.0
OVERHEAD_TARGET = 0.05
FRESHNESS_TARGET_S = 5.0

# :e enrollments, :m messages, :p patients.
GENERATE = [
    "INSERT INTO facilities (key, name, timezone) VALUES ('north', 'North', 'America/New_York'), "
    "('south', 'South', 'America/Chicago')",
    "INSERT INTO patients (id, version_id) SELECT 'p' || n, '1' FROM generate_series(1, :p) AS n",
    "INSERT INTO patient_facilities (patient_id, facility, source) "
    "SELECT 'p' || n, CASE WHEN n % 3 = 0 THEN 'south' ELSE 'north' END, 'bench' "
    "FROM generate_series(1, :p) n",
    """
    INSERT INTO enrollments (id, journey_key, journey_version, patient_id, status, outcome, current_step,
                             trigger, context, exclusive, once_only, workflow_id, started_at, ended_at)
    SELECT 'e' || n, 'journey-' || (n % 3), 1 + n % 2, 'p' || (n % :p + 1),
           CASE WHEN n % 10 < 6 THEN 'completed' WHEN n % 10 < 8 THEN 'exited' ELSE 'running' END,
           CASE WHEN n % 10 < 6 THEN 'booked' WHEN n % 10 < 8 THEN 'goal_reached' END,
           CASE WHEN n % 10 >= 8 THEN 'await-reply' END,
           '{}', '{}', false, false, 'wf-e' || n,
           now() - make_interval(secs => n % 7776000),
           now() - make_interval(secs => n % 7776000) + interval '2 days'
    FROM generate_series(1, :e) AS n
    """,
    """
    INSERT INTO enrollment_steps (enrollment_id, seq, step, at, result, detail)
    SELECT e.id, s.seq, s.step, e.started_at + make_interval(secs => s.seq * 3600), s.result, s.detail
    FROM enrollments e CROSS JOIN LATERAL (VALUES
        (1, 'notify', 'sent', NULL),
        (2, 'await-reply', CASE WHEN e.status = 'running' THEN NULL ELSE 'event' END, NULL),
        (3, 'route', CASE WHEN e.status = 'completed' THEN 'matched' END, 'condition 1 held'),
        (4, '<exited>', CASE WHEN e.status = 'exited' THEN 'goal_reached' END, NULL)
    ) AS s(seq, step, result, detail)
    WHERE s.result IS NOT NULL
    """,
    """
    INSERT INTO messages (id, idempotency_key, patient_id, enrollment_id, journey_key, step_id,
                          campaign_run_id, channel, template_key, status, provider, created_at,
                          updated_at, sent_at, delivered_at, opened_at, clicked_at)
    SELECT 'm' || n, 'k' || n, 'p' || (n % :p + 1), NULL, CASE WHEN n % 4 > 0 THEN 'journey-' || (n % 3) END,
           'notify', CASE WHEN n % 4 = 0 THEN 'run-' || (n % 5) END,
           CASE WHEN n % 5 = 0 THEN 'email' ELSE 'sms' END, 'template-' || (n % 7),
           CASE WHEN n % 50 = 0 THEN 'skipped' WHEN n % 20 = 0 THEN 'failed' WHEN n % 3 = 0 THEN 'sent'
                ELSE 'delivered' END,
           'bench', now() - make_interval(secs => n % 7776000), now(),
           CASE WHEN n % 50 <> 0 THEN now() - make_interval(secs => n % 7776000) END,
           CASE WHEN n % 50 <> 0 AND n % 20 <> 0 AND n % 3 <> 0 THEN now() END,
           CASE WHEN n % 5 = 0 AND n % 2 = 0 THEN now() END,
           CASE WHEN n % 5 = 0 AND n % 6 = 0 THEN now() END
    FROM generate_series(1, :m) AS n
    """,
    "INSERT INTO message_events (message_id, provider, provider_event_id, event, occurred_at) "
    "SELECT 'm' || n, 'bench', 'ev' || n, 'bounce', now() FROM generate_series(5, :m, 200) AS n",
    "INSERT INTO send_decisions (patient_id, idempotency_key, channel, journey_key, purpose, decision, rule, "
    "created_at) SELECT 'p' || (n % :p + 1), 'k' || n, 'sms', 'journey-' || (n % 3), 'care', "
    "CASE WHEN n % 50 = 0 THEN 'skipped' ELSE 'sent' END, "
    "CASE WHEN n % 50 = 0 THEN 'consent' ELSE 'allow' END, "
    "now() - make_interval(secs => n % 7776000) FROM generate_series(1, :m) AS n",
]


def create_database(server: str) -> str:
    """A new, migrated database on the server; its SQLAlchemy URL."""
    name = f"aftercare_bench_analytics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = normalise_database_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_database(server: str, url: str) -> None:
    """Drop the benchmark database."""
    name = normalise_database_url(url).database or ""
    with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def generate(url: str, enrollments: int, messages: int) -> None:
    """Write the facts (the triggers fill the rollups as they go)."""
    patients = max(1000, enrollments // 2)
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        for statement in GENERATE:
            text = statement.replace(":e", str(enrollments)).replace(":m", str(messages))
            text = text.replace(":p", str(patients))
            started = time.perf_counter()
            cursor = connection.execute(text)
            table = text.split("INSERT INTO ")[1].split()[0]
            print(f"  {table:<20} {cursor.rowcount:>11,} rows  {time.perf_counter() - started:7.1f}s")
        connection.execute("VACUUM ANALYZE")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


async def queries(url: str, repeat: int) -> list[tuple[str, float, float]]:
    """(name, p50 ms, p95 ms) of each analytics read."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    reads = {
        "funnel journey-1": lambda s: journey_funnel(s, "journey-1"),
        "funnel journey-1 v2": lambda s: journey_funnel(s, "journey-1", version=2),
        "messages by channel": lambda s: message_rows(s, "channel"),
        "messages by journey": lambda s: message_rows(s, "journey"),
        "messages by template": lambda s: message_rows(s, "template"),
        "messages by campaign": lambda s: message_rows(s, "campaign"),
        "messages per day (NY)": lambda s: message_series(s, "day", "America/New_York"),
        "messages per hour (UTC)": lambda s: message_series(s, "hour", "UTC"),
        "journey per day": lambda s: journey_series(s, "journey-1", "day", "Europe/Paris"),
    }
    results = []
    try:
        for name, read in reads.items():
            timings = []
            for _ in range(repeat + 1):
                async with sessions() as session:
                    started = time.perf_counter()
                    await read(session)
                    timings.append((time.perf_counter() - started) * 1000)
            timings = timings[1:]  # the first warms the cache
            results.append((name, statistics.median(timings), percentile(timings, 0.95)))
    finally:
        await engine.dispose()
    return results


SEND_PATH = [
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status) "
    "VALUES (%(id)s, %(id)s, 'p1', 'journey-1', 'sms', 'template-1', 'pending')",
    "UPDATE messages SET status = 'sent', sent_at = now(), attempts = 1, updated_at = now() "
    "WHERE id = %(id)s",
    "UPDATE messages SET status = 'delivered', delivered_at = now(), updated_at = now() WHERE id = %(id)s",
]


def send_path(url: str, count: int, tag: str) -> float:
    """Seconds for `count` messages through the send path's three transactions."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        started = time.perf_counter()
        for number in range(count):
            for statement in SEND_PATH:
                connection.execute(statement, {"id": f"{tag}-{number}"})
        return time.perf_counter() - started


def ingest_overhead(url: str, count: int) -> tuple[float, float]:
    """Per-message milliseconds with and without the triggers (alternating rounds, best of three)."""
    with_triggers, without = [], []
    with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
        for round_number in range(3):
            with_triggers.append(send_path(url, count, f"on{round_number}"))
            admin.execute("ALTER TABLE messages DISABLE TRIGGER analytics_rollup")
            try:
                without.append(send_path(url, count, f"off{round_number}"))
            finally:
                admin.execute("ALTER TABLE messages ENABLE TRIGGER analytics_rollup")
        admin.execute("DELETE FROM messages WHERE id LIKE 'o%%'")
    return min(with_triggers) / count * 1000, min(without) / count * 1000


async def freshness(url: str, rate: float, duration: float) -> list[float]:
    """Seconds from each message's commit to a reader seeing it in the totals."""
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    commits: list[float] = []
    lags: list[float] = []
    async with sessions() as session:
        baseline = sum(row.counts["messages"] for row in await message_rows(session, "channel"))
    done = asyncio.Event()

    async def writer() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_dsn(url), autocommit=True) as connection:
            started = time.perf_counter()
            number = 0
            while time.perf_counter() - started < duration:
                due = started + number / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                await connection.execute(SEND_PATH[0], {"id": f"fresh-{number}"})
                commits.append(time.perf_counter())
                number += 1
        done.set()

    async def reader() -> None:
        seen = 0
        while not done.is_set() or seen < len(commits):
            async with sessions() as session:
                total = sum(row.counts["messages"] for row in await message_rows(session, "channel"))
            now = time.perf_counter()
            visible = min(total - baseline, len(commits))
            lags.extend(now - commits[index] for index in range(seen, visible))
            seen = max(seen, visible)
            await asyncio.sleep(0.05)

    try:
        await asyncio.gather(writer(), reader())
    finally:
        await engine.dispose()
    return lags


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query")
    parser.add_argument("--sends", type=int, default=500, help="messages per ingest round")
    parser.add_argument("--rate", type=float, default=500.0, help="facts per second for freshness")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the freshness run")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    url = create_database(args.server)
    try:
        print(f"writing {args.messages:,} messages, {args.enrollments:,} enrollments (triggers on)")
        started = time.perf_counter()
        generate(url, args.enrollments, args.messages)
        print(f"  in {time.perf_counter() - started:.0f}s (analysed)\n")
        results = asyncio.run(queries(url, args.repeat))
        on, off = ingest_overhead(url, args.sends)
        lags = asyncio.run(freshness(url, args.rate, args.duration))
    finally:
        if not args.keep:
            drop_database(args.server, url)

    print(f"{'query':<26} {'p50':>9} {'p95':>9}  target p95 < {QUERY_TARGET_MS:g} ms")
    for name, p50, p95 in results:
        print(f"{name:<26} {p50:>7.1f}ms {p95:>7.1f}ms  {'ok' if p95 < QUERY_TARGET_MS else 'SLOW'}")
    overhead = on / off - 1
    verdict = "ok" if overhead < OVERHEAD_TARGET else "OVER"
    print(
        f"\nsend path (record, sent, delivered): {on:.2f} ms/message with the triggers, {off:.2f} ms without:"
        f" {overhead:+.1%}  target < {OVERHEAD_TARGET:.0%}  {verdict}"
    )
    if lags:
        p99 = percentile(lags, 0.99)
        print(
            f"freshness at {args.rate:g}/s asked, {len(lags) / args.duration:.0f}/s written, "
            f"for {args.duration:g}s: {len(lags):,} facts, p50 "
            f"{statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms"
            f"  target p99 < {FRESHNESS_TARGET_S:g}s  {'ok' if p99 < FRESHNESS_TARGET_S else 'LATE'}"
        )


if __name__ == "__main__":
    main()
