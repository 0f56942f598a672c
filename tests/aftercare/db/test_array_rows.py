"""The multi-row inserts over arrays write and return the same rows as the `INSERT ... VALUES` they
replace, given one row at a time or all at once: conflicts, NULLs, JSON and timestamps included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from aftercare.db.array_rows import ArrayInsert, array_insert
from aftercare.store.identity import _insert
from aftercare.store.resources import _CURRENT, _INSERT_VERSION, _UPSERT_CURRENT
from models.tables import IdentityCandidate, PatientIdentifier, table_of
from tests.aftercare.db.former_statements import INSERT_VERSION_VALUES, UPSERT_CURRENT_VALUES

_EARLY, _LATE = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)


def _current(resource_id: str, version: str, updated: datetime | None, patient: str | None) -> dict[str, Any]:
    return {
        "resource_type": "Observation",
        "resource_id": resource_id,
        "version_id": version,
        "content": {"resourceType": "Observation", "id": resource_id, "note": f'é "{version}" \\ ✓'},
        "patient_id": patient,
        "last_updated": updated,
    }


_STORED = [
    _current("later-stored", "v2", _LATE, "p-1"),
    _current("undated-stored", "v1", None, "p-1"),
    _current("kept", "v1", _EARLY, None),
]
_ARRIVING = [
    _current("later-stored", "v1", _EARLY, "p-2"),  # older than what is stored: not current
    _current("undated-stored", "v2", _EARLY, None),  # the stored one has no date: replaced
    _current("kept", "v2", None, "p-3"),  # the arriving one has no date: replaced
    _current("new", "v1", _LATE, None),
    _current("new-undated", "v1", None, "p-4"),
]


def _version(resource_id: str, version: str, interaction: str, fires: bool) -> dict[str, Any]:
    return {
        **_current(resource_id, version, _EARLY if version == "v1" else None, "p-1"),
        "source": "test",
        "interaction": interaction,
        "fires_triggers": fires,
    }


_STORED_VERSIONS = [_version("a", "v1", "create", True)]
_ARRIVING_VERSIONS = [
    _version("a", "v1", "update", False),  # stored already: left as it was
    _version("a", "v2", "update", True),
    _version("b", "v1", "create", False),
    _version("b", "v1", "update", True),  # twice in the batch: the first is kept
]

Run = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[set[tuple[Any, ...]]]]


def _values(statement: Any) -> Run:
    async def run(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {tuple(row) for row in await connection.execute(statement, rows)}

    return run


def _arrays(statement: ArrayInsert, *, one_by_one: bool) -> Run:
    async def run(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        returned: set[tuple[Any, ...]] = set()
        for chunk in [[row] for row in rows] if one_by_one else [rows]:
            result = await connection.execute(statement.statement, statement.parameters(chunk))
            returned.update(tuple(row) for row in result)
        return returned

    return run


async def _outcome(
    engine: AsyncEngine, table: str, run: Run, stored: list[dict[str, Any]], arriving: list[dict[str, Any]]
) -> tuple[set[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What `run` returns for `arriving` over `stored`, and the table's rows after (rolled back)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await _values(UPSERT_CURRENT_VALUES if table == "fhir_resources" else INSERT_VERSION_VALUES)(
            connection, stored
        )
        returned = await run(connection, arriving)
        columns = "resource_type, resource_id, version_id, content, patient_id, last_updated"
        if table == "fhir_resource_versions":
            columns += ", source, interaction, fires_triggers"
        rows = (await connection.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3"))).all()  # noqa: S608
        await transaction.rollback()
    return returned, [tuple(row) for row in rows]


async def test_the_current_versions_upsert_gives_the_rows_of_the_values_statement(
    empty_database: AsyncEngine,
) -> None:
    before = await _outcome(
        empty_database, "fhir_resources", _values(UPSERT_CURRENT_VALUES), _STORED, _ARRIVING
    )
    for one_by_one in (False, True):
        after = await _outcome(
            empty_database,
            "fhir_resources",
            _arrays(_UPSERT_CURRENT, one_by_one=one_by_one),
            _STORED,
            _ARRIVING,
        )
        assert after == before
    returned, rows = before
    assert {row[1:] for row in returned} == {
        ("undated-stored", "v2"),
        ("kept", "v2"),
        ("new", "v1"),
        ("new-undated", "v1"),
    }
    assert rows[0][3]["note"] == 'é "v2" \\ ✓'
    assert [row[4] for row in rows] == ["p-3", "p-1", None, "p-4", None]


async def test_the_versions_insert_gives_the_rows_of_the_values_statement(
    empty_database: AsyncEngine,
) -> None:
    table = "fhir_resource_versions"
    before = await _outcome(
        empty_database, table, _values(INSERT_VERSION_VALUES), _STORED_VERSIONS, _ARRIVING_VERSIONS
    )
    for one_by_one in (False, True):
        after = await _outcome(
            empty_database,
            table,
            _arrays(_INSERT_VERSION, one_by_one=one_by_one),
            _STORED_VERSIONS,
            _ARRIVING_VERSIONS,
        )
        assert after == before
    returned, rows = before
    assert returned == {("Observation", "a", "v2"), ("Observation", "b", "v1")}
    assert [row[6:] for row in rows] == [
        ("test", "create", True),
        ("test", "update", True),
        ("test", "create", False),
    ]


async def test_the_identity_inserts_count_the_new_rows_alone(empty_database: AsyncEngine) -> None:
    identifiers = table_of(PatientIdentifier)
    candidates = table_of(IdentityCandidate)
    pairs = [{"system": "urn:mrn", "value": f"m-{n}", "patient_id": "p-1"} for n in range(3)]
    review = {"record_id": "p-1", "other_id": "p-2", "rule": "name+birth_date", "evidence": {"a": [1, None]}}
    async with empty_database.connect() as connection:
        session = AsyncSession(bind=connection)
        assert await _insert(session, identifiers, pairs[:1]) == 1
        assert await _insert(session, identifiers, [*pairs, pairs[2]]) == 2
        assert await _insert(session, candidates, [review]) == 1
        assert await _insert(session, candidates, [review]) == 0
        stored = (await session.execute(select(IdentityCandidate.evidence, IdentityCandidate.status))).all()
        await session.rollback()
    assert [tuple(row) for row in stored] == [({"a": [1, None]}, "open")]


async def test_a_value_longer_than_its_column_is_refused_not_cut(empty_database: AsyncEngine) -> None:
    too_long = _current("x" * 65, "v1", None, None)
    for run in (_values(UPSERT_CURRENT_VALUES), _arrays(_UPSERT_CURRENT, one_by_one=False)):
        async with empty_database.connect() as connection:
            with pytest.raises(DBAPIError, match="value too long"):
                await run(connection, [_current("fits", "v1", None, None), too_long])
            await connection.rollback()


def test_a_statement_text_is_the_same_whatever_the_rows() -> None:
    statement = array_insert(_CURRENT, ("resource_type", "resource_id", "content"), "ON CONFLICT DO NOTHING")
    assert str(statement.statement) == (
        "INSERT INTO fhir_resources (resource_type, resource_id, content) SELECT * FROM unnest("
        "CAST(:resource_type AS VARCHAR[]), CAST(:resource_id AS VARCHAR[]), "
        "ARRAY(SELECT value FROM jsonb_array_elements(CAST(:content AS jsonb)) WITH ORDINALITY "
        "ORDER BY ordinality)) ON CONFLICT DO NOTHING"
    )
    rows: Sequence[dict[str, Any]] = [
        {"resource_type": "Patient", "resource_id": "p", "content": None},
        {"resource_type": "Patient", "resource_id": "q", "content": {"id": "q"}},
    ]
    assert statement.parameters(rows) == {
        "resource_type": ["Patient", "Patient"],
        "resource_id": ["p", "q"],
        "content": '[null,{"id": "q"}]',
    }
    assert statement.parameters(rows, {"content": ['{"id":"p"}', "{}"]})["content"] == '[{"id":"p"},{}]'
