"""The async engine and session factory (SQLAlchemy 2 on psycopg 3). The caller owns the transaction."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from aftercare.db.connection_discipline import watch_checkouts
from aftercare.facilities.scope import scope_transactions

# How long a caller waits for a pooled connection before the pool gives up (an API request then
# answers 503 with Retry-After rather than hanging), and for a new connection to the server.
POOL_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5


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
    url: str | URL, *, pool_size: int = 10, pool_timeout: float = POOL_TIMEOUT_SECONDS
) -> AsyncEngine:
    """An async engine; psycopg 3 serves both async and the synchronous migrations. Every task's
    connections are watched: one task taking a second connection is the pool deadlock in waiting."""
    engine = create_async_engine(
        normalise_database_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=pool_timeout,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    watch_checkouts(engine)
    scope_transactions(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
