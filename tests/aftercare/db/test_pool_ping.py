"""The pool checks only the connections that sat idle: one the server closed while it sat idle is
replaced before anyone uses it; one back in the pool for a moment is handed out without a round trip."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from aftercare.db.engine import create_engine
from aftercare.settings import Settings


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _connection_killed(settings: Settings, ping_after_idle: float) -> tuple[AsyncEngine, int]:
    """An engine whose one pooled connection the server has closed, and that connection's backend."""
    engine = create_engine(settings.database_url, pool_size=1, ping_after_idle=ping_after_idle)
    first = await _backend_pid(engine)
    assert await _backend_pid(engine) == first  # the pool hands the same connection back
    await _terminate(settings, first)
    await asyncio.sleep(0.5)
    return engine, first


async def _terminate(settings: Settings, pid: int) -> None:
    killer = create_engine(settings.database_url, pool_size=1)
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


async def test_a_connection_the_server_closed_while_idle_is_replaced(settings: Settings) -> None:
    engine, first = await _connection_killed(settings, ping_after_idle=0.2)
    try:
        assert await _backend_pid(engine) != first  # checked, found closed, replaced: no error
    finally:
        await engine.dispose()


async def test_a_connection_back_for_a_moment_is_not_checked(settings: Settings) -> None:
    engine, first = await _connection_killed(settings, ping_after_idle=60.0)
    try:
        # Not checked, so its first statement meets the closed connection (the window the threshold
        # accepts); the pool discards it and the next checkout gets a new one.
        failed = False
        try:
            await _backend_pid(engine)
        except Exception:  # the driver's error for a closed connection
            failed = True
        assert failed
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()
