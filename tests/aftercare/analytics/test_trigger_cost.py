"""What keeps the rollup triggers cheap on the send path (`0020`): their statements are planned once (a
generic plan), the hour bucket is inlined where it is used, and a message's update that moves no count
calls no trigger function, while every update that does still counts (the rollups equal to the facts);
the migration goes down to `0019`'s triggers and up again."""

from __future__ import annotations

import psycopg
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare
from aftercare.db.engine import create_engine
from aftercare.db.migrate import alembic_config, libpq_dsn, upgrade
from tests.conftest import create_test_database, drop_test_database

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


def _calls(connection: psycopg.Connection[tuple[object, ...]], statement: str, counted: str = CALLS) -> int:
    """How many times `statement` called the functions `counted` sums (the message trigger's)."""
    with connection.transaction():
        connection.execute("SET LOCAL track_functions = 'all'")
        before = connection.execute(counted).fetchone()
        connection.execute(statement)
        after = connection.execute(counted).fetchone()
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


async def test_the_hour_bucket_is_inlined_and_is_the_utc_hour(
    empty_database: AsyncEngine, database_url: str
) -> None:
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


# The send path's statements for one message, its facility set (as the activity records it) or left to
# the patient's: recorded, its decision, claimed, sent with a reply already in its 7 days, delivered.
SEND = [
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status, "
    "facility) VALUES (%(id)s, %(id)s, %(patient)s, 'journey-1', 'sms', 'template-1', 'pending', %(facility)s)",
    "INSERT INTO send_decisions (patient_id, idempotency_key, channel, journey_key, purpose, decision, rule) "
    "VALUES (%(patient)s, %(id)s, 'sms', 'journey-1', 'care', 'sent', 'allow')",
    "UPDATE messages SET status = 'sending', provider = 'twilio', attempts = 1 WHERE id = %(id)s",
    "UPDATE messages SET status = 'sent', sent_at = now(), provider_message_id = %(id)s WHERE id = %(id)s",
    "UPDATE messages SET status = 'delivered', delivered_at = now() WHERE id = %(id)s",
]
REPLY = (
    "INSERT INTO inbound_messages (provider_message_id, provider, channel, from_address, patient_id, body, "
    "received_at) VALUES ('SM-in-1', 'twilio', 'sms', '+15550100', 'p1', 'thanks', now() + interval '1 hour')"
)
SETTINGS = (
    "SELECT proname, proconfig FROM pg_proc "
    "WHERE proname IN ('analytics_message_change', 'analytics_decision_recorded') ORDER BY proname"
)


async def test_the_send_paths_statements_count_right_with_generic_plans(
    empty_database: AsyncEngine, database_url: str
) -> None:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        for statement in SETUP[:3]:
            connection.execute(statement)
        connection.execute(REPLY)
        settings = connection.execute(SETTINGS).fetchall()
        # Past the plan cache's five plans for given values, alternating the shapes each plan folds.
        for number in range(12):
            values = {
                "id": f"s{number}",
                "patient": f"p{1 + number % 2}",
                "facility": ("north", "south", None)[number % 3],
            }
            for statement in SEND:
                connection.execute(statement, values)
    await fold(empty_database)

    assert settings == [
        ("analytics_decision_recorded", ["search_path=public", "plan_cache_mode=force_generic_plan"]),
        ("analytics_message_change", ["search_path=public", "plan_cache_mode=force_generic_plan"]),
    ]
    assert await compare(empty_database) == []


async def test_the_migration_goes_down_to_0019s_triggers_and_up_again(postgres_server: str) -> None:
    url = create_test_database(postgres_server)
    dsn = libpq_dsn(url)
    engine = create_engine(url, pool_size=1)
    claim = "UPDATE messages SET status = 'sending', provider = 'twilio' WHERE id = 'm2'"
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            for statement in SETUP:
                connection.execute(statement)
        command.downgrade(alembic_config(url), "0019")
        with psycopg.connect(dsn, autocommit=True) as connection:
            down = (
                connection.execute(SETTINGS).fetchall(),
                connection.execute(
                    "EXPLAIN VERBOSE SELECT analytics_hour(created_at) FROM messages"
                ).fetchall(),
                _calls(connection, claim),
                _calls(connection, "UPDATE messages SET status = 'sent', sent_at = now() WHERE id = 'm2'"),
            )
        upgrade(url)
        with psycopg.connect(dsn, autocommit=True) as connection:
            up = _calls(connection, claim.replace("'m2'", "'m1'"))
        assert await compare(engine) == []
    finally:
        await engine.dispose()
        drop_test_database(postgres_server, url)

    settings, plan, claimed, sent = down
    assert settings == [
        ("analytics_decision_recorded", ["search_path=public"]),
        ("analytics_message_change", ["search_path=public"]),
    ]
    assert "analytics_hour" in "\n".join(str(row[0]) for row in plan)
    assert (claimed, sent, up) == (1, 1, 0)


# How many times this backend called the functions the message trigger used to hand its counting to.
NESTED = (
    "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_xact_user_functions "
    "WHERE funcname IN ('analytics_count_message', 'analytics_count_message_update')"
)


async def test_a_send_s_own_writes_are_counted_by_the_trigger_itself_without_a_nested_call(
    empty_database: AsyncEngine, database_url: str
) -> None:
    """`0021`: an insert and an update that keeps the message's key are counted inline; an update that
    moves the key and a delete still hand over to the counting functions. The rollups stay exact."""
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as connection:
        for statement in SETUP[:3]:
            connection.execute(statement)
        nested = [
            _calls(connection, statement, NESTED)
            for statement in (
                "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, "
                "status, facility) VALUES ('m3', 'm3', 'p1', 'journey-1', 'sms', 'template-1', 'pending', "
                "'north')",
                "UPDATE messages SET status = 'sent', sent_at = now() WHERE id = 'm3'",
                "UPDATE messages SET status = 'delivered', delivered_at = now() WHERE id = 'm3'",
                "UPDATE messages SET facility = 'south', patient_id = 'p2' WHERE id = 'm3'",  # the key moves
                "DELETE FROM messages WHERE id = 'm3'",
            )
        ]
    await fold(empty_database)

    assert nested == [0, 0, 0, 2, 1]
    assert await compare(empty_database) == []
