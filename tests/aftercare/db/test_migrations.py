"""The migrations build exactly the schema the ORM tables describe, and the value-set indexes
segment queries rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import create_engine

from aftercare.db.engine import normalise_database_url
from aftercare.db.migrate import libpq_dsn
from models.tables import Base
from models.value_sets import LATEST_OBSERVATION_VALUE_SETS, VALUE_SETS
from tests.conftest import drop_test_database


def test_the_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_each_latest_observation_value_set_has_its_partial_index(database_url: str) -> None:
    with psycopg.connect(libpq_dsn(database_url)) as connection:
        rows = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_clinical_observations_latest_%'"
            ).fetchall()
        )
    for name in LATEST_OBSERVATION_VALUE_SETS:
        definition = rows[f"ix_clinical_observations_latest_{name.replace('-', '_')}"]
        for coding in VALUE_SETS[name].codes:
            assert coding.token() in definition
        assert "effective_at DESC NULLS LAST" in definition


def test_processes_that_migrate_at_once_take_turns_and_all_succeed(postgres_server: str) -> None:
    """Every replica's init container runs `aftercare migrate` as it starts (deploy/kubernetes)."""
    name = f"aftercare_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_dsn(postgres_server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = normalise_database_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    environment = {**os.environ, "DATABASE_URL": url}
    try:
        migrations = [
            subprocess.Popen(
                [sys.executable, "-m", "aftercare", "migrate"],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [migration.communicate(timeout=240)[0] for migration in migrations]
        assert [migration.returncode for migration in migrations] == [0, 0, 0], outputs
        with psycopg.connect(libpq_dsn(url)) as connection:
            versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(versions) == 1
    finally:
        drop_test_database(postgres_server, url)
