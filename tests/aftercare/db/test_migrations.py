"""The migrations build exactly the schema the ORM tables describe, and the value-set indexes
segment queries rely on."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from aftercare.db.engine import normalise_database_url
from aftercare.db.migrate import libpq_dsn
from models.tables import Base
from models.value_sets import LATEST_OBSERVATION_VALUE_SETS, VALUE_SETS


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
