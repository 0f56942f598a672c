"""The async engine and session factory (SQLAlchemy 2 on psycopg 3). The caller owns the transaction."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from aftercare.db.connection_discipline import watch_checkouts
from aftercare.db.prepared_statements import keep_prepared_statements
from aftercare.facilities.scope import scope_transactions

# How long a caller waits for a pooled connection before the pool gives up (an API request then
# answers 503 with Retry-After rather than hanging), and for a new connection to the server.
POOL_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
# A pooled connection idle for longer than this is checked (`SELECT 1`) before it is handed out, so one
# the server closed meanwhile (a restart, an idle timeout) is replaced instead of failing a request. One
# back in the pool for less is handed out as it is: checking it would be a round trip on every
# transaction, a good part of a notification's database work.
PING_AFTER_IDLE_SECONDS = 1.0
_RETURNED_AT = "aftercare_returned_at"
# A connection that plans every run of a prepared statement with its values (PostgreSQL's
# `plan_cache_mode`), instead of the generic plan it otherwise settles on after five runs.
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"


def normalise_database_url(url: str | URL) -> URL:
    """Use the psycopg 3 driver whatever the URL names (`postgresql://`, `postgres://`)."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    parsed = make_url(text)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    custom_plans: bool = False,
) -> AsyncEngine:
    """An async engine; psycopg 3 serves both async and the synchronous migrations. Every task's
    connections are watched: one task taking a second connection is the pool deadlock in waiting.

    With `custom_plans`, each run of a prepared statement is planned for its own values. That suits
    statements over arrays whose size varies from one run to the next (a batch's identifiers): a
    generic plan sees neither the size nor the values, so it cannot hash an `= ANY(...)` list, and
    it keeps the row counts its tables had when it was made. Statements are still parsed only once."""
    parsed = normalise_database_url(url)
    connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if custom_plans:
        given = parsed.query.get("options", ())
        connect_args["options"] = " ".join([*([given] if isinstance(given, str) else given), CUSTOM_PLANS])
    engine = create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )
    ping_idle_connections(engine, ping_after_idle)
    keep_prepared_statements(engine)
    watch_checkouts(engine)
    scope_transactions(engine)
    return engine


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """`pool_pre_ping`, for the connections that sat in the pool longer than `idle_seconds` only; a
    connection that fails the check is discarded and the pool hands out another (SQLAlchemy's
    documented pessimistic disconnect handling)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is not None and time.monotonic() - returned < idle_seconds:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as error:  # whatever the driver raises for a dead connection
            raise DisconnectionError(f"a pooled connection failed its check: {error}") from error
        finally:
            with suppress(Exception):
                cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
