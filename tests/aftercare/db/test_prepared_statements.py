"""A pooled connection keeps its prepared statements through a rollback (every read-only unit of work
ends in one), so a statement run often is planned once per connection, not on most runs; a schema
change through the connection still clears them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aftercare.db.engine import create_engine
from aftercare.settings import Settings

PROBE = "SELECT count(*) FROM facilities WHERE key <> :key"


async def _run_read_only(engine: AsyncEngine, times: int) -> None:
    """`times` units of work that each run the probe and end without a commit (a rollback)."""
    for _ in range(times):
        async with engine.connect() as connection:
            await connection.execute(text(PROBE), {"key": "none"})
            await connection.rollback()


async def _prepared_runs(connection: AsyncConnection) -> int:
    """How often the server ran the probe as a prepared statement on this connection (0: not prepared)."""
    row = await connection.execute(
        text(
            "SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements "
            "WHERE statement LIKE 'SELECT count(*) FROM facilities WHERE key <> %'"
        )
    )
    return int(row.scalar_one())


async def test_a_statement_prepared_on_a_connection_stays_prepared_after_rollbacks(
    settings: Settings,
) -> None:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await _run_read_only(engine, 6)  # psycopg prepares it on the sixth run
        async with engine.connect() as connection:
            prepared = await _prepared_runs(connection)
        assert prepared >= 1
        await _run_read_only(engine, 4)  # four more rollbacks, each after a run
        async with engine.connect() as connection:
            assert await _prepared_runs(connection) == prepared + 4  # each ran the prepared statement
    finally:
        await engine.dispose()


async def test_a_schema_change_on_the_connection_still_clears_them(settings: Settings) -> None:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await _run_read_only(engine, 6)
        async with engine.connect() as connection:
            await connection.execute(text("DEALLOCATE ALL"))
            await connection.rollback()
        await _run_read_only(engine, 1)  # psycopg forgot it too: sent unprepared, no error
        async with engine.connect() as connection:
            assert await _prepared_runs(connection) == 0
    finally:
        await engine.dispose()
