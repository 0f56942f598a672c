"""What keeps the rollup triggers cheap on the send path (`0020`): the hour bucket is inlined where it is
used, and a message's update that moves no count calls no trigger function, while every update that
does still counts (the rollups equal to the facts)."""

from __future__ import annotations

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare
from aftercare.db.migrate import libpq_dsn

SETUP = [
    "INSERT INTO facilities (key, name, timezone) VALUES ('north', 'North', 'UTC'), ('south', 'South', 'UTC')",
    "INSERT INTO patients (id, version_id) VALUES ('p1', '1'), ('p2', '1')",
    "INSERT INTO patient_facilities (patient_id, facility, source) VALUES ('p1', 'north', 't'), "
    "('p2', 'south', 't')",
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status) "
    "VALUES ('m1', 'm1', 'p1', 'journey-1', 'sms', 'template-1', 'pending'), "
    "('m2', 'm2', 'p1', 'journey-1', 'sms', 'template-1', 'pending')",
]
# How many times this backend called the message trigger's function (its statistics not yet reported).
CALLS = (
    "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_xact_user_functions "
    "WHERE funcname = 'analytics_message_change'"
)


def _calls(connection: psycopg.Connection[tuple[object, ...]], statement: str) -> int:
    """How many times `statement` called the message trigger's function."""
    with connection.transaction():
        connection.execute("SET LOCAL track_functions = 'all'")
        before = connection.execute(CALLS).fetchone()
        connection.execute(statement)
        after = connection.execute(CALLS).fetchone()
    assert before is not None
    assert after is not None
    return int(str(after[0])) - int(str(before[0]))


async def test_an_update_that_moves_no_count_calls_no_trigger_and_the_others_still_count(
    empty_database: AsyncEngine, database_url: str
) -> None:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        for statement in SETUP:
            connection.execute(statement)
        calls = [
            _calls(connection, statement)
            for statement in (
                # every send's claim: the status changes, no counter does
                "UPDATE messages SET status = 'sending', provider = 'twilio', attempts = 1 WHERE id = 'm1'",
                "UPDATE messages SET status = 'sent', sent_at = now(), provider_message_id = 'SM1' WHERE id = 'm1'",
                "UPDATE messages SET status = 'queued' WHERE id = 'm1'",  # still sent, nothing else
                "UPDATE messages SET status = 'failed', provider = 'twilio', reason = 'code 30003' "
                "WHERE id = 'm2'",
                "UPDATE messages SET attempts = 2 WHERE id = 'm2'",  # a failed message, nothing counted
                "UPDATE messages SET reason = 'code 30005' WHERE id = 'm2'",  # its reason row moves
                "UPDATE messages SET status = 'undelivered', provider = 'sendgrid' WHERE id = 'm2'",
                "UPDATE messages SET patient_id = 'p2' WHERE id = 'm1'",  # another patient's facility
            )
        ]
    await fold(empty_database)

    assert calls == [0, 1, 0, 1, 0, 1, 1, 1]
    assert await compare(empty_database) == []


async def test_the_hour_bucket_is_inlined_and_is_the_utc_hour(empty_database: AsyncEngine, database_url: str) -> None:
    moments = [
        "2026-03-08 06:59:59.999999+00",
        "2026-03-29 01:30:00+01",
        "2026-10-25 02:45:00+02",
        "2026-01-01 10:45:00+05:30",
        "infinity",
        "-infinity",
    ]
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        plan = "\n".join(
            str(row[0])
            for row in connection.execute("EXPLAIN VERBOSE SELECT analytics_hour(created_at) FROM messages")
        )
        connection.execute("SET timezone = 'America/St_Johns'")
        rows = [
            connection.execute(
                "SELECT analytics_hour(%(t)s::timestamptz) = date_trunc('hour', %(t)s::timestamptz, 'UTC')",
                {"t": moment},
            ).fetchone()
            for moment in moments
        ]
        null = connection.execute("SELECT analytics_hour(NULL)").fetchone()

    assert "analytics_hour" not in plan  # the planner put the expression in its place
    assert rows == [(True,)] * len(moments)
    assert null == (None,)
