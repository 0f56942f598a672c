"""The facilities migration on a database filled by the version before it: one default facility holds
every patient, keys keep reaching the whole group, and a scoped transaction sees only its facility."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from aftercare.db.migrate import alembic_config, libpq_dsn
from tests.conftest import create_test_database, drop_test_database

BEFORE_FACILITIES = "0003"


@pytest.fixture
def old_database(postgres_server: str) -> Iterator[str]:
    url = create_test_database(postgres_server)  # migrated to the newest revision: step back first
    command.downgrade(alembic_config(url), BEFORE_FACILITIES)
    with psycopg.connect(libpq_dsn(url)) as connection:
        for index in range(3):
            connection.execute(
                "INSERT INTO patients (id, version_id, name) VALUES (%s, '1', %s)",
                (f"p{index}", f"Pat {index}"),
            )
            connection.execute(
                "INSERT INTO messages (id, idempotency_key, patient_id, channel, status) "
                "VALUES (%s, %s, %s, 'sms', 'sent')",
                (f"m{index}", f"k{index}", f"p{index}"),
            )
        connection.execute(
            "INSERT INTO api_keys (id, name, secret_hash, roles) VALUES ('k1', 'ops', %s, '{admin}')",
            ("0" * 64,),
        )
    yield url
    drop_test_database(postgres_server, url)


def test_an_existing_install_gets_one_default_facility_holding_everything(old_database: str) -> None:
    command.upgrade(alembic_config(old_database), "head")
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        assert connection.execute("SELECT key, parent FROM facilities").fetchall() == [("default", None)]
        placed = connection.execute(
            "SELECT patient_id, facility FROM patient_facilities ORDER BY 1"
        ).fetchall()
        assert placed == [("p0", "default"), ("p1", "default"), ("p2", "default")]
        assert connection.execute("SELECT facilities FROM api_keys").fetchall() == [([],)]
        assert connection.execute("SELECT count(*) FROM messages WHERE facility IS NULL").fetchone() == (3,)


def test_a_scoped_transaction_sees_only_its_facility_s_patients(old_database: str) -> None:
    command.upgrade(alembic_config(old_database), "head")
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        connection.execute("INSERT INTO facilities (key, name, timezone) VALUES ('other', 'Other', 'UTC')")
        connection.execute("UPDATE patient_facilities SET facility = 'other' WHERE patient_id = 'p2'")
        connection.commit()
        for grant, patients in (("default", ["p0", "p1"]), ("other", ["p2"]), ("nowhere", [])):
            with connection.transaction():
                connection.execute("SET LOCAL ROLE aftercare_scoped")
                connection.execute("SELECT set_config('aftercare.facilities', %s, true)", (grant,))
                seen = [row[0] for row in connection.execute("SELECT id FROM patients ORDER BY id")]
                messages = [
                    row[0] for row in connection.execute("SELECT patient_id FROM messages ORDER BY 1")
                ]
            assert seen == patients == messages
        assert len(connection.execute("SELECT id FROM patients").fetchall()) == 3  # outside: everything


def test_the_migration_goes_down_and_up_again(old_database: str) -> None:
    config = alembic_config(old_database)
    command.upgrade(config, "head")
    command.downgrade(config, BEFORE_FACILITIES)
    with psycopg.connect(libpq_dsn(old_database)) as connection:
        assert connection.execute("SELECT to_regclass('facilities')").fetchone() == (None,)
        assert connection.execute("SELECT count(*) FROM patients").fetchone() == (3,)
    command.upgrade(config, "head")
