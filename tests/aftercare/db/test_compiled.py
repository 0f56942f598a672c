"""PostgreSQL inserts compiled once: the same statement for the same columns, rows written as before."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.db.compiled import OnceCompiled
from models.tables import Message, table_of

pytestmark = pytest.mark.usefixtures("empty_database")

_MESSAGES = table_of(Message)
_INSERT = OnceCompiled(
    insert(_MESSAGES).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(*_MESSAGES.columns)
)


def intent(key: str, **extra: object) -> dict[str, object]:
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
        **extra,
    }


def test_the_same_columns_share_one_compiled_statement() -> None:
    assert _INSERT.for_values(intent("a")) is _INSERT.for_values(intent("b"))
    assert _INSERT.for_values(intent("a")) is not _INSERT.for_values(intent("a", subject="s"))


def test_a_table_with_python_side_defaults_is_refused() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String, default="x"))
    with pytest.raises(ValueError, match="Python-side defaults"):
        OnceCompiled(insert(table))


async def test_rows_are_inserted_once_and_returned_typed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        first = (await session.execute(_INSERT.for_values(intent("k-1")), intent("k-1"))).first()
        again = (await session.execute(_INSERT.for_values(intent("k-1")), intent("k-1"))).first()
    assert first is not None
    assert again is None
    assert first._mapping["headers"] == {"List-Unsubscribe": "<https://example.org/u>"}
    assert first._mapping["created_at"].tzinfo is not None
    async with sessions() as session:
        stored = await session.scalar(select(Message).where(Message.idempotency_key == "k-1"))
    assert stored is not None
    assert stored.headers == {"List-Unsubscribe": "<https://example.org/u>"}
