"""A database of every release in CHANGELOG.md upgrades to the newest revision with its data kept:
made at the release's head revision, filled with `releases/<version>.sql`, upgraded, read back through
the current tables. Part of `make release-check`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text

from aftercare.db.engine import normalise_database_url
from aftercare.db.migrate import alembic_config, libpq_dsn
from models.tables import Base
from tests.conftest import drop_test_database
from tests.project.changelog import Section, releases

FILLS = Path(__file__).parent / "releases"


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    """A new database with no schema at all."""
    name = f"aftercare_release_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_dsn(postgres_server), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = normalise_database_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    yield url
    drop_test_database(postgres_server, url)


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            counts = {}
            for table in Base.metadata.sorted_tables:
                connection.execute(select(table).limit(1)).all()  # every current column is there
                counts[table.name] = connection.execute(select(func.count()).select_from(table)).scalar_one()
            return counts
    finally:
        engine.dispose()


@pytest.mark.parametrize("release", releases(), ids=lambda release: release.name)
def test_a_database_of_the_release_upgrades_with_its_data(release: Section, empty_database: str) -> None:
    assert release.head, f"[{release.name}] names no head revision"
    fill = FILLS / f"{release.name}.sql"
    assert fill.is_file(), f"write tests/aftercare/db/releases/{fill.name}: a little data at {release.head}"
    command.upgrade(alembic_config(empty_database), release.head)
    with psycopg.connect(libpq_dsn(empty_database)) as connection:
        connection.execute(fill.read_text().encode())

    command.upgrade(alembic_config(empty_database), "head")

    counts = _counts(empty_database)
    for table in ("patients", "journeys", "templates", "enrollments", "messages", "tasks", "api_keys"):
        assert counts[table] == 1, table
    engine = create_engine(normalise_database_url(empty_database))
    try:
        with engine.connect() as connection:
            body = connection.execute(text("SELECT body FROM messages WHERE id = 'release-message'"))
            assert body.scalar_one() == "Hi Ada"
    finally:
        engine.dispose()
