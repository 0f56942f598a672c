"""Analytics at scale: every analytics query's latency over millions of facts, what the rollup triggers
add to the real send path, and how soon a fact shows in the analytics while the folder runs.

    python bench/analytics.py                                  # 10M messages, 1M enrollments
    python bench/analytics.py --messages 1000000 --enrollments 100000 --rate 500 --duration 20

It creates a fresh database, migrates it and writes the facts in SQL (`generate_series`, with
`bench/population.py`) with the rollup triggers on, as the application would: patients in two
facilities, enrollments of three journeys (running, completed, exited) with their step records,
messages over 90 days with their fates, bounce events and guardrail decisions; the deltas the triggers
appended are then folded. Then:
- **queries**: each analytics read (funnel, messages by each grouping, daily and hourly series) run
  `--repeat` times; p50 and p95 (target p95 < 300 ms);
- **ingest overhead**: the send activity's whole work for one message (`send_message` as the worker
  runs it: guardrails, the intent claimed, the decision logged, the text sent through the `twilio` SDK
  to `tests/twilio_server.py`, the status written) for patients stored through the product's
  ingestion (`tests/population.py`), in alternating rounds with the analytics triggers enabled and
  disabled; wall time and CPU time (this process plus the database backends serving it, read from
  /proc, which load does not distort) per message (target < 5 %);
- **freshness**: messages written at `--rate` per second for `--duration` seconds while the folder
  runs every second (as in the worker) and a reader polls the messages' totals: the time from each
  commit to the reader seeing it (target p99 < 5 s), the fold rounds' times and the largest backlog.
The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.testing import ActivityEnvironment

from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from activities.messaging.twilio_sms import TwilioSmsProvider
from aftercare.analytics.ab import campaign_ab, journey_split_ab
from aftercare.analytics.attendance import attendance, invitations
from aftercare.analytics.fold import fold
from aftercare.analytics.funnel import journey_funnel
from aftercare.analytics.messages import message_rows
from aftercare.analytics.rebuild import ROLLUPS, rebuild
from aftercare.analytics.series import journey_series, message_series
from aftercare.analytics.window import Window
from aftercare.db.engine import create_engine, session_factory
from aftercare.db.migrate import libpq_dsn
from bench.cost import on_cpu_ns
from bench.population import create_database, drop_database, percentile, run_statements
from models.journey import SendSpec
from tests.helpers import TWILIO_ACCOUNT_SID, send_request
from tests.population import store_patients, synthetic_patient
from tests.twilio_server import running_twilio

QUERY_TARGET_MS = 300.0
# This run's mark in the ids it writes, so a run on a kept database (`--database`) writes new facts.
RUN = uuid.uuid4().hex[:8]
LAST_30_DAYS = Window(start=datetime.now(UTC) - timedelta(days=30))
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
           CASE WHEN n % 3 = 2 THEN '{"kind": "manual"}'::jsonb
                ELSE jsonb_build_object('kind', 'event', 'event', jsonb_build_object(
                    'id', 'seg' || n, 'type', 'segment.entered', 'data', jsonb_build_object(
                        'segment', CASE WHEN n % 3 = 0 THEN 'diabetes' ELSE 'heart-failure' END))) END,
           '{}', false, false, 'wf-e' || n,
           now() - make_interval(secs => n % 7776000),
           now() - make_interval(secs => n % 7776000) + interval '2 days'
    FROM generate_series(1, :e) AS n
    """,
    """
    INSERT INTO enrollment_steps (enrollment_id, seq, step, at, result, detail)
    SELECT e.id, s.seq, s.step, e.started_at + make_interval(secs => s.seq * 3600), s.result, s.detail
    FROM enrollments e CROSS JOIN LATERAL (VALUES
        (0, 'choose', CASE WHEN e.journey_key = 'journey-2'
                      THEN 'path ' || CASE WHEN e.patient_id < 'p5' THEN 'warm' ELSE 'plain' END END, NULL),
        (1, 'notify', 'sent', NULL),
        (2, 'await-reply', CASE WHEN e.status = 'running' THEN NULL ELSE 'event' END, NULL),
        (3, 'route', CASE WHEN e.status = 'completed' THEN 'matched' END, 'condition 1 held'),
        (4, '<exited>', CASE WHEN e.status = 'exited' THEN 'goal_reached' END, NULL)
    ) AS s(seq, step, result, detail)
    WHERE s.result IS NOT NULL
    """,
    """
    INSERT INTO messages (id, idempotency_key, patient_id, enrollment_id, journey_key, step_id,
                          campaign_run_id, facility, channel, template_key, status, provider, created_at,
                          updated_at, sent_at, delivered_at, opened_at, clicked_at)
    SELECT 'm' || n, CASE WHEN n <= :e THEN 'e' || n || '/notify/1' ELSE 'k' || n END, 'p' || (n % :p + 1),
           CASE WHEN n <= :e THEN 'e' || n END,
           CASE WHEN n <= :e THEN 'journey-' || (n % 3) WHEN n % 4 > 0 THEN 'journey-' || (n % 3) END,
           'notify', CASE WHEN n > :e AND n % 4 = 0 THEN 'run-' || (n % 5) END,
           CASE WHEN (n % :p + 1) % 3 = 0 THEN 'south' ELSE 'north' END,
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
    # One campaign run's recipients (its A/B read joins them with their messages), two variants.
    "INSERT INTO campaign_runs (id, campaign_key, campaign_version, workflow_id, status, segment_key) "
    "VALUES ('run-0', 'bench-campaign', 1, 'wf-run-0', 'completed', 'everyone')",
    "INSERT INTO campaign_recipients (run_id, ordinal, patient_id, zone, variant, state, message_id) "
    "SELECT 'run-0', i, 'r' || i, 'UTC', CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 'messaged', 'm' || n "
    "FROM (SELECT row_number() OVER () AS i, n FROM generate_series(:e + 20, :m, 20) AS n LIMIT :r) AS run",
    "INSERT INTO message_events (message_id, provider, provider_event_id, event, occurred_at) "
    "SELECT 'm' || n, 'bench', 'ev' || n, 'bounce', now() FROM generate_series(5, :m, 200) AS n",
    "INSERT INTO send_decisions (patient_id, idempotency_key, channel, journey_key, purpose, decision, rule, "
    "created_at, facility) SELECT 'p' || (n % :p + 1), 'k' || n, 'sms', 'journey-' || (n % 3), 'care', "
    "CASE WHEN n % 50 = 0 THEN 'skipped' ELSE 'sent' END, "
    "CASE WHEN n % 50 = 0 THEN 'consent' ELSE 'allow' END, "
    "now() - make_interval(secs => n % 7776000), "
    "CASE WHEN (n % :p + 1) % 3 = 0 THEN 'south' ELSE 'north' END FROM generate_series(1, :m) AS n",
]


def generate(url: str, enrollments: int, messages: int, run_size: int, through_triggers: bool) -> None:
    """Write the facts in SQL. By default as a bulk load: the analytics triggers off while the facts are
    written, then the rollups computed from them in one pass (`aftercare analytics rebuild`), the triggers
    back on. With `through_triggers`, each fact goes through its trigger as the application writes it
    (the deltas are folded at the end): the same rollups, about ten times slower to load."""
    patients = max(1000, enrollments // 2)
    values = {"e": enrollments, "m": messages, "p": patients, "r": run_size}
    if through_triggers:
        run_statements(url, GENERATE, values)
        started = time.perf_counter()
        with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
            row = connection.execute("SELECT analytics_fold()").fetchone()
            connection.execute("VACUUM ANALYZE")
        print(f"  folded into {row[0] if row else 0:,} rollup rows  {time.perf_counter() - started:7.1f}s")
        return
    set_triggers(url, False)
    indexes = _drop_plain_indexes(url)
    try:
        run_statements(url, GENERATE, values)
    finally:
        set_triggers(url, True)
    started = time.perf_counter()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '256MB'")
        for definition in indexes:
            connection.execute(definition)
    print(f"  {len(indexes)} indexes built again  {time.perf_counter() - started:7.1f}s")
    started = time.perf_counter()
    asyncio.run(_rebuild(url))
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        counted = " + ".join(
            f"(SELECT count(*) FROM {rollup.table})"  # noqa: S608 (the rollups' names)
            for rollup in ROLLUPS
        )
        row = connection.execute(f"SELECT {counted}").fetchone()
        rows = int(row[0]) if row else 0
    print(f"  rollups computed from the facts: {rows:,} rows  {time.perf_counter() - started:7.1f}s")


# The big fact tables, whose indexes a bulk load builds once after writing rather than row by row.
BULK_TABLES = ("messages", "send_decisions", "enrollment_steps", "enrollments", "message_events")


def _drop_plain_indexes(url: str) -> list[str]:
    """Drop the big tables' indexes that back no constraint; their definitions, to build again."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
            "WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)",
            (list(BULK_TABLES),),
        ).fetchall()
        for name, _ in rows:
            connection.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


async def _rebuild(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await rebuild(engine)
    finally:
        await engine.dispose()


async def queries(url: str, repeat: int) -> list[tuple[str, float, float]]:
    """(name, p50 ms, p95 ms) of each analytics read."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    reads = {
        "funnel journey-1": lambda s: journey_funnel(s, "journey-1"),
        "funnel journey-1 v2": lambda s: journey_funnel(s, "journey-1", version=2),
        "funnel, one segment": lambda s: journey_funnel(s, "journey-1", segment="diabetes"),
        "funnel, no segment": lambda s: journey_funnel(s, "journey-1", segment=""),
        "funnel, email steps": lambda s: journey_funnel(s, "journey-1", channel="email"),
        "funnel, segment+channel": lambda s: journey_funnel(
            s, "journey-1", segment="heart-failure", channel="sms"
        ),
        "funnel, 30 days": lambda s: journey_funnel(s, "journey-1", window=LAST_30_DAYS),
        "messages by channel": lambda s: message_rows(s, "channel"),
        "messages by journey": lambda s: message_rows(s, "journey"),
        "messages by template": lambda s: message_rows(s, "template"),
        "messages by campaign": lambda s: message_rows(s, "campaign"),
        "messages per day (NY)": lambda s: message_series(s, "day", "America/New_York"),
        "messages per hour (UTC)": lambda s: message_series(s, "hour", "UTC"),
        "journey per day": lambda s: journey_series(s, "journey-1", "day", "Europe/Paris"),
        "journey split A/B": lambda s: journey_split_ab(s, "journey-2", "choose", "booked"),
        "campaign A/B (one run)": lambda s: campaign_ab(s, "bench-campaign", "clicked"),
        "events": lambda s: _events(s),
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


async def _events(session: AsyncSession) -> object:
    """The events endpoint's two reads: registrations per session, invitations per event."""
    return await attendance(session), await invitations(session)


# The analytics triggers (migrations 0013 and 0015), disabled for the "without" rounds.
TRIGGERS = {
    "enrollments": ("analytics_rollup", "analytics_rollup_update"),
    "enrollment_steps": ("analytics_rollup",),
    "messages": ("analytics_rollup", "analytics_rollup_update"),
    "message_events": ("analytics_rollup",),
    "inbound_messages": ("analytics_rollup",),
    "consent_events": ("analytics_rollup",),
    "send_decisions": ("analytics_rollup",),
}
SEND_PATIENTS = 200
WRITERS = 8
RECORD = (
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status) "
    "VALUES (%(id)s, %(id)s, 'p1', 'journey-1', 'sms', 'template-1', 'pending')"
)


def _mean_interval(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95 % interval (Student's t)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.inf
    t = T_975.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def overhead_report(bare: Mapping[bool, list[float]], sends: Mapping[bool, tuple[list[float], ...]]) -> str:
    """The send path's overhead from the analytics triggers, with 95 % intervals. Rounds alternate (on
    to warm up, then off, on, off, on, ...), so each "off" round is paired with the "on" round right after
    it and differences are taken pair by pair (slow drifts of the machine's load cancel). Two estimates:
    the direct one (the activity's whole CPU, on minus off, over off) and the decomposed one (what the
    triggers add to the database backends' CPU inside the real activity, over the activity's whole CPU
    without them): the backends' CPU is far steadier than the whole, so the second is the precise one."""
    on_cpu, off_cpu, on_db, off_db = sends[True][1], sends[False][1], sends[True][2], sends[False][2]
    direct = [on / off - 1 for on, off in zip(on_cpu, off_cpu, strict=False)]
    added = [on - off for on, off in zip(on_db, off_db, strict=False)]
    (d_mean, d_half), (a_mean, a_half) = _mean_interval(direct), _mean_interval(added)
    (w_mean, w_half), (b_mean, b_half) = (
        _mean_interval(off_cpu),
        _mean_interval([on - off for on, off in zip(bare[True], bare[False], strict=False)]),
    )
    share, upper = a_mean / w_mean, (a_mean + a_half) / (w_mean - w_half)
    return (
        f"overhead, {len(direct)} pairs of rounds: direct (whole CPU) {d_mean:+.1%} ± {d_half:.1%}; "
        f"triggers add {a_mean:.2f} ± {a_half:.2f} ms of database CPU per message in the real activity "
        f"(bare writes: {b_mean:.2f} ± {b_half:.2f} ms), of {w_mean:.2f} ± {w_half:.2f} ms without them: "
        f"{share:+.1%}, at most {upper:+.1%} (95 %)  target < {OVERHEAD_TARGET:.0%}  "
        f"{'ok' if upper < OVERHEAD_TARGET else 'NOT SHOWN'}"
    )


# Student's t, two-sided 95 %, by degrees of freedom.
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
         11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 19: 2.09, 29: 2.05}  # fmt: skip


def set_triggers(url: str, enabled: bool) -> None:
    """Enable or disable the analytics triggers."""
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        for table, triggers in TRIGGERS.items():
            for trigger in triggers:
                connection.execute(f"ALTER TABLE {table} {verb} TRIGGER {trigger}")  # names are constants


def backends_cpu(url: str) -> float:
    """CPU seconds used so far by the database's other backends (this benchmark's connections), from
    the scheduler's count (the server must run on this machine)."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"  # not autovacuum, which the send path does not wait for
            )
        ]
    # The scheduler's nanoseconds: user + system time counts 10 ms ticks, 0.07 ms a message in a round
    # of 150, as coarse as the difference measured.
    return sum(on_cpu_ns(pid) or 0 for pid in pids) / 1e9


# The send path's own writes for one message, bare (no guardrails, no provider): recorded, its decision,
# sent, delivered.
BARE_WRITES = [
    RECORD,
    "INSERT INTO send_decisions (patient_id, idempotency_key, channel, journey_key, purpose, decision, rule) "
    "VALUES ('p1', %(id)s, 'sms', 'journey-1', 'care', 'sent', 'allow')",
    "UPDATE messages SET status = 'sent', sent_at = now(), attempts = 1, updated_at = now() "
    "WHERE id = %(id)s",
    "UPDATE messages SET status = 'delivered', delivered_at = now(), updated_at = now() WHERE id = %(id)s",
]


def bare_writes(url: str, count: int, rounds: int) -> dict[bool, list[float]]:
    """Per round, with the triggers on (True) and off (False), alternating: milliseconds of database
    CPU per message for the bare writes (what the triggers add, without the rest of a send)."""
    results: dict[bool, list[float]] = {True: [], False: []}
    sent = 0
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        for round_number in range(2 * rounds + 1):
            enabled = round_number % 2 == 0
            set_triggers(url, enabled)
            before = backends_cpu(url)
            for _ in range(count):
                sent += 1
                for statement in BARE_WRITES:
                    connection.execute(statement, {"id": f"bare-{RUN}-{sent}"})
            if round_number > 0:
                results[enabled].append((backends_cpu(url) - before) / count * 1000)
    set_triggers(url, True)
    return results


async def send_path(
    url: str, sends: int, rounds: int
) -> dict[bool, tuple[list[float], list[float], list[float]]]:
    """Per round, with the triggers on (True) and off (False), alternating: milliseconds of wall time
    and of CPU time (this process and the database backends; the backends alone) per message sent by
    the send activity."""
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    patients = await store_patients(
        sessions, [synthetic_patient(index) for index in range(1, SEND_PATIENTS + 1)]
    )
    results: dict[bool, tuple[list[float], list[float], list[float]]] = {
        True: ([], [], []),
        False: ([], [], []),
    }
    environment = ActivityEnvironment()
    sent = 0
    try:
        with running_twilio() as twilio:
            provider = TwilioSmsProvider(
                TWILIO_ACCOUNT_SID, "auth-token", "+15005550006", base_url=twilio.base_url
            )
            activities = MessagingActivities(sessions, ProviderRegistry({"sms": provider}, OutboxProvider()))
            for round_number in range(2 * rounds + 1):
                enabled = round_number % 2 == 0
                set_triggers(url, enabled)
                cpu_before, db_before = time.process_time(), backends_cpu(url)
                started = time.perf_counter()
                for _ in range(sends):
                    sent += 1
                    request = send_request(
                        SendSpec(channel="sms", body="Your follow-up is due, {{ patient.given }}"),
                        visit=sent,
                        enrollment_id=f"bench-{RUN}-{sent}",
                        patient_id=patients[sent % len(patients)],
                        journey_key="journey-1",
                    )
                    result = await environment.run(activities.send_message, request)
                    if result.status not in ("sent", "queued"):
                        raise RuntimeError(f"send {sent}: {result.status} {result.reason}")
                wall = time.perf_counter() - started
                database = backends_cpu(url) - db_before
                cpu = time.process_time() - cpu_before + database
                if round_number > 0:  # the first round warms the caches
                    results[enabled][0].append(wall / sends * 1000)
                    results[enabled][1].append(cpu / sends * 1000)
                    results[enabled][2].append(database / sends * 1000)
    finally:
        set_triggers(url, True)
        await engine.dispose()
    return results


async def freshness(url: str, rate: float, duration: float) -> tuple[list[float], list[float], int]:
    """Seconds from each message's commit to a reader seeing it in the totals, while the folder runs
    every second; the fold rounds' seconds; the most deltas pending at once."""
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    commits: list[float] = []
    lags: list[float] = []
    folds: list[float] = []
    backlog = 0
    async with sessions() as session:
        baseline = sum(row.counts["messages"] for row in await message_rows(session, "channel"))
    done = asyncio.Event()

    async def writer(lane: int) -> None:
        # Each of WRITERS connections writes every WRITERS-th fact of the schedule, so the rate holds
        # though one commit takes longer than 1/rate on a loaded machine.
        async with await psycopg.AsyncConnection.connect(libpq_dsn(url), autocommit=True) as connection:
            number = lane
            while (due := started + number / rate) - started < duration:
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                await connection.execute(RECORD, {"id": f"fresh-{RUN}-{number}"})
                commits.append(time.perf_counter())
                number += WRITERS

    async def writers() -> None:
        await asyncio.gather(*(writer(lane) for lane in range(WRITERS)))
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

    async def folder() -> None:
        nonlocal backlog
        async with await psycopg.AsyncConnection.connect(libpq_dsn(url), autocommit=True) as connection:
            while not done.is_set():
                row = await (
                    await connection.execute("SELECT count(*) FROM analytics_messages_delta")
                ).fetchone()
                backlog = max(backlog, int(row[0]) if row else 0)
                started = time.perf_counter()
                await fold(engine)
                folds.append(time.perf_counter() - started)
                await asyncio.sleep(1.0)

    try:
        started = time.perf_counter()
        await asyncio.gather(writers(), reader(), folder())
    finally:
        await engine.dispose()
    return lags, folds, backlog


def _fill(url: str, args: argparse.Namespace) -> None:
    how = "through the triggers" if args.through_triggers else "bulk load, triggers off, then one rebuild"
    print(f"writing {args.messages:,} messages, {args.enrollments:,} enrollments ({how})", flush=True)
    started = time.perf_counter()
    generate(url, args.enrollments, args.messages, args.run_size, args.through_triggers)
    print(
        f"  in {time.perf_counter() - started:.0f}s (analysed), load average {os.getloadavg()[0]:.1f}\n",
        flush=True,
    )


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument(
        "--run-size", type=int, default=20_000, help="recipients of the A/B-read campaign run"
    )
    parser.add_argument(
        "--through-triggers",
        action="store_true",
        help="write each fact through its trigger (slow) instead of a bulk load and one rebuild",
    )
    parser.add_argument("--skip-send-path", action="store_true", help="queries (and freshness) only")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query")
    parser.add_argument("--sends", type=int, default=100, help="messages per send-path round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="send-path rounds with the triggers, and without"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="facts per second for freshness")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the freshness run")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--database", help="the URL of a database a `--keep` run left: measure on it, write nothing first"
    )
    args = parser.parse_args()

    url = args.database or create_database(args.server, "analytics")
    try:
        if args.database is None:
            _fill(url, args)
        if args.keep:
            print(f"the database is kept: --database {url}", flush=True)
        results = asyncio.run(queries(url, args.repeat))
        print(f"{'query':<26} {'p50':>9} {'p95':>9}  target p95 < {QUERY_TARGET_MS:g} ms")
        for name, p50, p95 in results:
            print(f"{name:<26} {p50:>7.1f}ms {p95:>7.1f}ms  {'ok' if p95 < QUERY_TARGET_MS else 'SLOW'}")
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.skip_send_path:
            return
        bare = bare_writes(url, 4 * args.sends, args.rounds)
        sends = asyncio.run(send_path(url, args.sends, args.rounds))
        lags, folds, backlog = asyncio.run(freshness(url, args.rate, args.duration))
    finally:
        if not args.keep and args.database is None:
            drop_database(args.server, url)

    on, off = (statistics.median(bare[enabled]) for enabled in (True, False))
    print(
        f"\nbare writes (recorded, decision, sent, delivered), database CPU, {args.rounds} rounds of "
        f"{4 * args.sends} each way: {on:.2f} ms/message with the triggers, {off:.2f} ms without "
        f"(+{on - off:.2f} ms)"
    )
    print(f"send activity, {args.rounds} rounds of {args.sends} messages each way (median of the rounds):")
    for index, measure in enumerate(("wall", "CPU", "DB CPU")):
        on, off = (statistics.median(sends[enabled][index]) for enabled in (True, False))
        print(
            f"  {measure:<6} rounds on {[round(x, 2) for x in sends[True][index]]}, "
            f"off {[round(x, 2) for x in sends[False][index]]}\n"
            f"  {measure:<6} {on:.2f} ms/message with the triggers, {off:.2f} ms without: {on / off - 1:+.1%}"
        )
    print(overhead_report(bare, sends))
    if lags:
        p99 = percentile(lags, 0.99)
        print(
            f"freshness at {args.rate:g}/s asked, {len(lags) / args.duration:.0f}/s written, "
            f"for {args.duration:g}s: {len(lags):,} facts, p50 "
            f"{statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms"
            f"  target p99 < {FRESHNESS_TARGET_S:g}s  {'ok' if p99 < FRESHNESS_TARGET_S else 'LATE'}"
        )
    if folds:
        print(
            f"folder every 1 s: {len(folds)} rounds, p50 {statistics.median(folds) * 1000:.0f} ms, "
            f"max {max(folds) * 1000:.0f} ms; at most {backlog:,} message deltas pending"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
