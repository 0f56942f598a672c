"""Alembic environment: migrations run synchronously on psycopg 3."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from models.tables import Base

config = context.config
target_metadata = Base.metadata

# Every API, worker or init container may run `aftercare migrate` as it starts: one transaction-scoped
# advisory lock lets one of them migrate while the others wait, then find the schema at head.
MIGRATION_LOCK = 7_310_001


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
