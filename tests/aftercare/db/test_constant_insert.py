"""`INSERT ... ON CONFLICT` constants are compiled once and still do what they say; a statement derived
from one, or one holding literal values, is not given a key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from aftercare.db.constant_insert import constant_insert
from aftercare.store.enrollments import _INSERT_ENROLLMENT
from aftercare.store.messages import record_intent
from models.tables import FhirResource
from tests.aftercare.db.former_statements import CURRENT, INSERT_VERSION_VALUES, UPSERT_CURRENT_VALUES

_UPSERT_CURRENT = constant_insert(UPSERT_CURRENT_VALUES)
_INSERT_VERSION = constant_insert(INSERT_VERSION_VALUES)


def _row(version: str, updated: datetime) -> dict[str, Any]:
    return {
        "resource_type": "Observation",
        "resource_id": "constant-1",
        "version_id": version,
        "content": {"resourceType": "Observation", "id": "constant-1", "status": version},
        "patient_id": None,
        "last_updated": updated,
    }


async def test_an_upsert_constant_is_compiled_once_and_keeps_its_conflict_rule(
    empty_database: AsyncEngine,
) -> None:
    compiled: list[Any] = []

    def remember(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.startswith("INSERT INTO fhir_resources "):
            compiled.append(context.compiled)

    event.listen(empty_database.sync_engine, "before_cursor_execute", remember)
    try:
        sessions = async_sessionmaker(empty_database, expire_on_commit=False)
        later, earlier = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
        async with sessions.begin() as session:
            first = (await session.execute(_UPSERT_CURRENT, [_row("v2", later)])).all()
            # an older version does not replace a newer one: the ON CONFLICT ... WHERE still applies
            second = (await session.execute(_UPSERT_CURRENT, [_row("v1", earlier)])).all()
            stored = await session.scalar(select(FhirResource.version_id))
    finally:
        event.remove(empty_database.sync_engine, "before_cursor_execute", remember)
    assert [tuple(row) for row in first] == [("Observation", "constant-1", "v2")]
    assert second == []
    assert stored == "v2"
    assert len(compiled) == 2
    assert compiled[0] is compiled[1]


def test_each_constant_has_its_own_key() -> None:
    keys = [
        statement._generate_cache_key()
        for statement in (_UPSERT_CURRENT, _INSERT_VERSION, _INSERT_ENROLLMENT)
    ]
    assert all(key is not None for key in keys)
    assert len({key.key for key in keys if key is not None}) == 3


def test_a_statement_derived_from_a_constant_is_compiled_as_before() -> None:
    derived = _UPSERT_CURRENT.returning(CURRENT.c.content)
    assert derived._generate_cache_key() is None
    assert _UPSERT_CURRENT._generate_cache_key() is not None


def test_a_statement_with_literal_values_is_refused() -> None:
    with pytest.raises(ValueError, match="literal"):
        constant_insert(insert(CURRENT).values(resource_type="Observation").on_conflict_do_nothing())


def _intent(key: str) -> dict[str, object]:
    return {
        "id": key,
        "idempotency_key": key,
        "patient_id": "p-1",
        "channel": "email",
        "to": "a@example.org",
        "body": "Hi",
        "purpose": "care_coordination",
        "status": "pending",
        "headers": {"List-Unsubscribe": "<https://example.org/u>"},
    }


async def test_a_send_intent_is_recorded_once_and_returned_typed(empty_database: AsyncEngine) -> None:
    sessions = async_sessionmaker(empty_database, expire_on_commit=False)
    async with sessions.begin() as session:
        first = await record_intent(session, _intent("k-1"))
        again = await record_intent(session, {**_intent("k-1"), "body": "Hi again"})
        sent = await record_intent(session, _intent("k-2"), sent_now=True)
    assert again.id == first.id
    assert again.body == "Hi"
    assert first.headers == {"List-Unsubscribe": "<https://example.org/u>"}
    assert first.created_at.tzinfo is not None
    assert first.sent_at is None
    assert sent.sent_at is not None
