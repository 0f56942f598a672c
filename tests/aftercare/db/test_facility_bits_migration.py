"""`0018` on a database filled by the version before it: the facilities get ordinals in the order they
were made, every patient row the bits of the facilities it is placed in, and the triggers keep them
from then on; the migration goes down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from aftercare.db.migrate import alembic_config, libpq_dsn
from tests.conftest import create_test_database, drop_test_database

BEFORE = "0015"


@pytest.fixture
def old_database(postgres_server: str) -> Iterator[str]:
    url = create_test_database(postgres_server)  # migrated to the newest revision: step back first
    command.downgrade(alembic_config(url), BEFORE)
    with psycopg.connect(libpq_dsn(url)) as connection:
        connection.execute(
            "INSERT INTO facilities (key, name, timezone, created_at) VALUES ('group', 'Group', 'UTC', now());"
            "INSERT INTO facilities (key, name, timezone, parent, created_at) VALUES"
            " ('south', 'South', 'UTC', 'group', now() + interval '1 s'),"
            " ('north', 'North', 'UTC', 'group', now() + interval '2 s')"
        )
        for patient_id, facilities in (("p0", ["north"]), ("p1", ["north", "south"]), ("p2", [])):
            connection.execute("INSERT INTO patients (id, version_id) VALUES (%s, '1')", (patient_id,))
            for facility in facilities:
                connection.execute(
                    "INSERT INTO patient_facilities (patient_id, facility, source) VALUES (%s, %s, 'test')",
                    (patient_id, facility),
                )
    yield url
    drop_test_database(postgres_server, url)


def _state(url: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    with psycopg.connect(libpq_dsn(url)) as connection:
        ordinals = connection.execute("SELECT key, ordinal FROM facilities ORDER BY ordinal").fetchall()
        bits = connection.execute("SELECT id, facility_bits FROM patients ORDER BY id").fetchall()
    return ordinals, bits


def test_the_existing_rows_get_their_ordinals_and_bits_and_the_triggers_keep_them(old_database: str) -> None:
    command.upgrade(alembic_config(old_database), "head")
    assert _state(old_database) == (
        [("default", 0), ("group", 1), ("south", 2), ("north", 3)],  # `default`: made by `0004`
        [("p0", 0b1000), ("p1", 0b1100), ("p2", 0)],
    )
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        connection.execute("INSERT INTO facilities (key, name, timezone) VALUES ('east', 'East', 'UTC')")
        connection.execute("UPDATE patient_facilities SET facility = 'east' WHERE patient_id = 'p0'")
        assert connection.execute("SELECT ordinal FROM facilities WHERE key = 'east'").fetchone() == (4,)
        assert connection.execute("SELECT facility_bits FROM patients WHERE id = 'p0'").fetchone() == (
            0b10000,
        )


def test_the_migration_goes_down_and_up_again(old_database: str) -> None:
    command.upgrade(alembic_config(old_database), "head")
    command.downgrade(alembic_config(old_database), BEFORE)
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name IN ('facilities', 'patients')"
            " AND column_name IN ('ordinal', 'facility_bits')"
        ).fetchall()
        assert columns == []
    command.upgrade(alembic_config(old_database), "head")
    assert _state(old_database)[1] == [("p0", 0b1000), ("p1", 0b1100), ("p2", 0)]
