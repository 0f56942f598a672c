"""Migration `0009` on a database filled by the version before it: definitions stay the whole group's,
and the enrollments, tasks and send decisions already there name their patient's facility."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from aftercare.db.migrate import alembic_config, libpq_dsn
from tests.conftest import create_test_database, drop_test_database

BEFORE = "0008"


@pytest.fixture
def old_database(postgres_server: str) -> Iterator[str]:
    url = create_test_database(postgres_server)  # migrated to the newest revision: step back first
    command.downgrade(alembic_config(url), BEFORE)
    with psycopg.connect(libpq_dsn(url)) as connection:
        connection.execute("INSERT INTO patients (id, version_id, name) VALUES ('p0', '1', 'Pat')")
        connection.execute(
            "INSERT INTO patient_facilities (patient_id, facility, source) VALUES ('p0', 'default', 'default')"
        )
        connection.execute(
            "INSERT INTO journeys (key, version, name, definition, content_hash) "
            "VALUES ('j', 1, 'J', '{}', 'h')"
        )
        connection.execute(
            "INSERT INTO enrollments (id, journey_key, journey_version, patient_id, status, trigger, context, "
            "exclusive, once_only, workflow_id) VALUES ('e0', 'j', 1, 'p0', 'running', '{}', '{}', true, false, 'w0')"
        )
        connection.execute(
            "INSERT INTO tasks (id, idempotency_key, queue, title, patient_id, enrollment_id) "
            "VALUES ('t0', 'k0', 'q', 'Call', 'p0', 'e0')"
        )
        connection.execute(
            "INSERT INTO send_decisions (patient_id, idempotency_key, purpose, decision, rule) "
            "VALUES ('p0', 'k0', 'care', 'sent', 'allowed')"
        )
    yield url
    drop_test_database(postgres_server, url)


def test_existing_records_name_their_patient_s_facility_and_definitions_stay_the_group_s(
    old_database: str,
) -> None:
    command.upgrade(alembic_config(old_database), "head")
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        for table in ("enrollments", "tasks", "send_decisions"):
            assert connection.execute(f"SELECT facility FROM {table}").fetchall() == [("default",)]  # noqa: S608
        assert connection.execute("SELECT facility FROM journeys").fetchall() == [(None,)]
        # rows added later are filled in by the database
        connection.execute(
            "INSERT INTO tasks (id, idempotency_key, queue, title, patient_id) VALUES ('t1', 'k1', 'q', 'x', 'p0')"
        )
        assert connection.execute("SELECT facility FROM tasks WHERE id = 't1'").fetchone() == ("default",)


def test_the_migration_goes_down_and_up_again(old_database: str) -> None:
    config = alembic_config(old_database)
    command.upgrade(config, "head")
    command.downgrade(config, BEFORE)
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        columns = connection.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'facility' ORDER BY 1"
        ).fetchall()
        assert columns == [("messages",), ("patient_facilities",)]
    command.upgrade(config, "head")
