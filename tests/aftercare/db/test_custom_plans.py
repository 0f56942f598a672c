"""An engine made with `custom_plans` plans every run of a prepared statement for its own values; the
default engine lets PostgreSQL settle on a generic plan. The URL's own connection options are kept."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.db.engine import create_engine
from aftercare.hl7v2.server import listener_engine
from aftercare.settings import Settings

RUNS = 12  # psycopg prepares a statement on its fifth run; PostgreSQL may go generic after five more


async def _plans(engine: AsyncEngine) -> tuple[int, int]:
    """Run one look-up `RUNS` times on a new connection (prepared statements belong to it); the
    (generic, custom) plans it took. (A scalar
    parameter: for it a generic plan costs what a custom one does, so PostgreSQL left to itself
    switches to it.)"""
    statement = text("SELECT count(*) FROM batch_keys WHERE key = :key")
    async with engine.connect() as connection:
        await connection.execute(text("CREATE TEMPORARY TABLE batch_keys (key text PRIMARY KEY)"))
        await connection.execute(
            text("INSERT INTO batch_keys SELECT 'k' || n FROM generate_series(1, 1000) n")
        )
        await connection.execute(text("ANALYZE batch_keys"))
        for number in range(RUNS):
            await connection.execute(statement, {"key": f"k{number}"})
        row = (
            await connection.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%FROM batch_keys WHERE%'"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def _setting(engine: AsyncEngine, name: str) -> str:
    async with engine.connect() as connection:
        return str((await connection.execute(text(f"SHOW {name}"))).scalar_one())


async def test_a_custom_plans_engine_never_runs_a_generic_plan(settings: Settings) -> None:
    engine = create_engine(settings.database_url, pool_size=1, custom_plans=True)
    try:
        assert await _setting(engine, "plan_cache_mode") == "force_custom_plan"
        generic, custom = await _plans(engine)
        assert generic == 0
        assert custom > 0
    finally:
        await engine.dispose()


async def test_the_default_engine_settles_on_a_generic_plan(settings: Settings) -> None:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        assert await _setting(engine, "plan_cache_mode") == "auto"
        generic, _ = await _plans(engine)
        assert generic > 0
    finally:
        await engine.dispose()


async def test_the_urls_own_options_are_kept_beside_custom_plans(settings: Settings) -> None:
    separator = "&" if "?" in settings.database_url else "?"
    url = f"{settings.database_url}{separator}options=-c%20statement_timeout%3D7s"
    engine = create_engine(url, pool_size=1, custom_plans=True)
    try:
        assert await _setting(engine, "statement_timeout") == "7s"
        assert await _setting(engine, "plan_cache_mode") == "force_custom_plan"
    finally:
        await engine.dispose()


async def test_the_mllp_listener_plans_each_batch_for_its_own_arrays(settings: Settings) -> None:
    engine = listener_engine(settings)
    try:
        assert await _setting(engine, "plan_cache_mode") == "force_custom_plan"
    finally:
        await engine.dispose()
