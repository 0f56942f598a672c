"""The triggers append deltas; the folder moves them into the rollups. Readers count both, so folding
changes no number, a fold racing writers loses none, and the migration goes down (the deltas folded,
the previous triggers back) and up again with the rollups still equal to the facts."""

from __future__ import annotations

import asyncio

import psycopg
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.analytics.fold import fold
from aftercare.analytics.rebuild import compare
from aftercare.db.engine import create_engine
from aftercare.db.migrate import alembic_config, libpq_dsn, upgrade
from tests.conftest import create_test_database, drop_test_database

PATIENTS = [
    "INSERT INTO facilities (key, name, timezone) VALUES ('north', 'North', 'UTC'), ('south', 'South', 'UTC')",
    "INSERT INTO patients (id, version_id) VALUES ('p1', '1'), ('p2', '1')",
    "INSERT INTO patient_facilities (patient_id, facility, source) VALUES ('p1', 'north', 't'), "
    "('p2', 'south', 't')",
]
# One message through the send path: recorded, sent, delivered (each its own transaction).
SEND = [
    "INSERT INTO messages (id, idempotency_key, patient_id, journey_key, channel, template_key, status) "
    "VALUES (%(id)s, %(id)s, %(patient)s, 'journey-1', 'sms', 'template-1', 'pending')",
    "UPDATE messages SET status = 'sent', sent_at = now(), attempts = 1, updated_at = now() WHERE id = %(id)s",
    "UPDATE messages SET attempts = 2 WHERE id = %(id)s",  # nothing counted changes
    "UPDATE messages SET status = 'delivered', delivered_at = now(), updated_at = now() WHERE id = %(id)s",
]
TOTALS = (
    "SELECT facility, sum(messages)::int, sum(sent)::int, sum(delivered)::int FROM ("
    "SELECT * FROM analytics_messages UNION ALL SELECT * FROM analytics_messages_delta) AS m "
    "GROUP BY facility ORDER BY facility"
)


def send(dsn: str, numbers: range) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        for number in numbers:
            for statement in SEND:
                connection.execute(statement, {"id": f"m{number}", "patient": f"p{1 + number % 2}"})


async def test_a_fold_racing_the_writers_loses_no_fact_and_changes_no_number(
    empty_database: AsyncEngine, database_url: str
) -> None:
    dsn = libpq_dsn(database_url)
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in PATIENTS:
            connection.execute(statement)
    folds: list[int] = []
    writing = asyncio.create_task(asyncio.to_thread(send, dsn, range(60)))
    while not writing.done():
        folds.append(await fold(empty_database))
        await asyncio.sleep(0.01)
    await writing
    async with empty_database.connect() as connection:
        before_last_fold = (await connection.execute(text(TOTALS))).all()
    folds.append(await fold(empty_database))

    async with empty_database.connect() as connection:
        totals = (await connection.execute(text(TOTALS))).all()
        pending = await connection.scalar(text("SELECT count(*) FROM analytics_messages_delta"))
        folded = (
            await connection.execute(text("SELECT sum(messages)::int FROM analytics_messages"))
        ).scalar()
    assert totals == before_last_fold == [("north", 30, 30, 30), ("south", 30, 30, 30)]
    assert (pending, folded) == (0, 60)
    assert sum(written for written in folds if written > 0) > 0
    assert await compare(empty_database) == []


async def test_the_migration_goes_down_with_the_deltas_folded_and_up_again(postgres_server: str) -> None:
    url = create_test_database(postgres_server)
    dsn = libpq_dsn(url)
    engine = create_engine(url, pool_size=1)
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            for statement in PATIENTS:
                connection.execute(statement)
        send(dsn, range(4))

        command.downgrade(alembic_config(url), "0015-1")
        with psycopg.connect(dsn, autocommit=True) as connection:
            # The previous triggers count in the rollups themselves again, the pending deltas folded in.
            send(dsn, range(4, 5))
            rows = connection.execute(
                "SELECT facility, sum(messages)::int, sum(sent)::int FROM analytics_messages "
                "GROUP BY facility ORDER BY facility"
            ).fetchall()
            deltas = connection.execute("SELECT to_regclass('analytics_messages_delta')").fetchone()
            # 0013's shards are back, as 0013 computed them (shard 0 only since 0015).
            shards = connection.execute(
                "SELECT array_agg(DISTINCT shard ORDER BY shard) FROM analytics_messages"
            ).fetchone()
            expected = connection.execute(
                "SELECT array_agg(DISTINCT analytics_shard(id) ORDER BY analytics_shard(id)) FROM messages"
            ).fetchone()
        assert rows == [("north", 3, 3), ("south", 2, 2)]
        assert deltas == (None,)
        assert shards == expected
        assert shards is not None
        assert len(shards[0]) > 1

        upgrade(url)
        send(dsn, range(5, 7))
        assert await compare(engine) == []
        with psycopg.connect(dsn, autocommit=True) as connection:
            assert connection.execute("SELECT DISTINCT shard FROM analytics_messages").fetchall() == [(0,)]
        async with engine.connect() as connection:
            totals = (await connection.execute(text(TOTALS))).all()
        assert totals == [("north", 4, 4, 4), ("south", 3, 3, 3)]
    finally:
        await engine.dispose()
        drop_test_database(postgres_server, url)
