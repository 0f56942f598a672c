"""`0016`: each per-patient policy checks a row by probing `patient_facilities`' primary key with the
row's patient, rather than reading every patient of the reachable facilities for each statement; a
scoped transaction sees the same rows with either form, and the migration goes down and up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command

from aftercare.db.migrate import alembic_config, libpq_dsn
from aftercare.facilities.policies import CHILD_TABLES, PATIENT_TABLES, SCOPED_LATER
from tests.conftest import create_test_database, drop_test_database

BEFORE = "0013"
PER_PATIENT = [*PATIENT_TABLES, *CHILD_TABLES, *SCOPED_LATER]


@pytest.fixture
def database(postgres_server: str) -> Iterator[str]:
    url = create_test_database(postgres_server)
    with psycopg.connect(libpq_dsn(url)) as connection:
        connection.execute(
            "INSERT INTO facilities (key, name, timezone) VALUES ('group', 'Group', 'UTC');"
            "INSERT INTO facilities (key, name, timezone, parent) VALUES ('north', 'North', 'UTC', 'group'),"
            " ('south', 'South', 'UTC', 'group')"
        )
        for index, facility in enumerate(("north", "north", "south")):
            connection.execute(
                "INSERT INTO patients (id, version_id, name) VALUES (%s, '1', 'Pat')", (f"p{index}",)
            )
            connection.execute(
                "INSERT INTO patient_facilities (patient_id, facility, source) VALUES (%s, %s, 'test')",
                (f"p{index}", facility),
            )
            connection.execute(
                "INSERT INTO messages (id, idempotency_key, patient_id, channel, status) "
                "VALUES (%s, %s, %s, 'sms', 'sent')",
                (f"m{index}", f"k{index}", f"p{index}"),
            )
            connection.execute(
                "INSERT INTO message_events (message_id, provider, provider_event_id, event, occurred_at) "
                "VALUES (%s, 'test', %s, 'sent', now())",
                (f"m{index}", f"e{index}"),
            )
    yield url
    drop_test_database(postgres_server, url)


def _policies(url: str) -> dict[str, str]:
    with psycopg.connect(libpq_dsn(url)) as connection:
        rows = connection.execute(
            "SELECT tablename, qual FROM pg_policies WHERE policyname = 'facility_scope'"
        ).fetchall()
    return {table: qual for table, qual in rows}


def _seen(url: str, grant: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_dsn(url)) as connection, connection.transaction():
        connection.execute("SET LOCAL ROLE aftercare_scoped")
        connection.execute("SELECT set_config('aftercare.facilities', %s, true)", (grant,))
        return connection.execute(
            "SELECT (SELECT array_agg(id ORDER BY id) FROM patients),"
            " (SELECT array_agg(id ORDER BY id) FROM messages),"
            " (SELECT array_agg(message_id ORDER BY message_id) FROM message_events)"
        ).fetchall()


def _patient_probe(url: str) -> list[str]:
    """The index conditions on `patient_facilities` when a scoped caller reads one patient's messages
    (sequential scans off: the test tables are too small for the planner to choose an index)."""
    with psycopg.connect(libpq_dsn(url)) as connection, connection.transaction():
        connection.execute("SET LOCAL enable_seqscan = off")
        connection.execute("SET LOCAL ROLE aftercare_scoped")
        connection.execute("SELECT set_config('aftercare.facilities', 'north', true)")
        [(plan,)] = connection.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM messages WHERE patient_id = 'p0'"
        ).fetchall()
    conditions: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "patient_facilities" and "Index Cond" in node:
            conditions.append(node["Index Cond"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return conditions


def test_every_per_patient_policy_probes_the_row_s_patient_and_sees_the_same_rows(database: str) -> None:
    policies = _policies(database)
    assert set(PER_PATIENT) <= set(policies)
    for table in PER_PATIENT:
        assert "EXISTS" in policies[table], table
        assert "IN ( SELECT" not in policies[table], table
    assert any("patient_id" in condition for condition in _patient_probe(database))
    seen = {grant: _seen(database, grant) for grant in ("north", "south", "nowhere")}
    assert seen["north"] == [(["p0", "p1"], ["m0", "m1"], ["m0", "m1"])]
    assert seen["south"] == [(["p2"], ["m2"], ["m2"])]
    assert seen["nowhere"] == [(None, None, None)]

    command.downgrade(alembic_config(database), BEFORE)
    legacy = _policies(database)
    assert all("IN ( SELECT" in legacy[table] for table in PER_PATIENT)
    assert not any("patient_id" in condition for condition in _patient_probe(database))
    assert {grant: _seen(database, grant) for grant in seen} == seen

    command.upgrade(alembic_config(database), "head")
    assert _policies(database) == policies
