"""Alembic migrations, run in-process at start-up and by `aftercare migrate`."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import URL

from aftercare.db.engine import normalise_database_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic configuration for this database, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    rendered = normalise_database_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url: str | URL) -> None:
    """Bring the database schema to the newest revision."""
    command.upgrade(alembic_config(url), "head")


def libpq_dsn(url: str | URL, *, database: str | None = None) -> str:
    """A libpq connection string for the URL (optionally another database on the same server)."""
    parsed = normalise_database_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database_if_missing(url: str | URL) -> bool:
    """Create the URL's database on its server when it does not exist; True when it was created."""
    parsed = normalise_database_url(url)
    name = parsed.database
    if not name:
        raise ValueError("the database URL names no database")
    with psycopg.connect(libpq_dsn(parsed, database="postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True
