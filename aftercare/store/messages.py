"""Messages: send intents recorded before the provider is called, then their fate."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import TextualSelect, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.constant_insert import constant_insert
from models.tables import Message, SendDecision, table_of


async def find_by_idempotency_key(session: AsyncSession, key: str) -> Message | None:
    """The message recorded for this send, if any."""
    message: Message | None = await session.scalar(select(Message).where(Message.idempotency_key == key))
    return message


_MESSAGES = table_of(Message)
_INSERT_INTENT = (
    insert(_MESSAGES).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(*_MESSAGES.columns)
)
_INTENT = constant_insert(_INSERT_INTENT)
_SENT = constant_insert(_INSERT_INTENT.values(sent_at=func.now()))


async def record_intent(session: AsyncSession, values: dict[str, Any], *, sent_now: bool = False) -> Message:
    """Record a send intent once; a second call with the same idempotency key returns the first row.

    `sent_now` stamps `sent_at` with the database clock (a message already accepted when recorded).
    """
    connection = await session.connection()  # a Core statement: the ORM session's layer adds nothing
    row = (await connection.execute(_SENT if sent_now else _INTENT, values)).first()
    message = Message(**row._mapping) if row is not None else None
    if message is None:
        message = await find_by_idempotency_key(session, values["idempotency_key"])
    assert message is not None
    return message


_DECISIONS = table_of(SendDecision)
_DIALECT = postgresql.dialect()


def _quoted(name: str) -> str:
    return f'"{name}"'


def _unsized(sql_type: str) -> str:
    """`VARCHAR(64)` as `VARCHAR`: a cast to a sized type would cut a value the column refuses."""
    return re.sub(r"\(\d+\)", "", sql_type)


@cache
def _intent_and_decision(
    keys: tuple[str, ...], decision_keys: tuple[str, ...], sent_now: bool
) -> TextualSelect:
    """`INSERT ... ON CONFLICT DO NOTHING` of the intent with columns `keys` whose inserted row, and only
    it, brings its decision (columns `decision_keys`, bound as `decision_<name>`) along; answers the
    inserted row. Built and compiled once per set of columns."""
    # Every name is a column of its table (KeyError otherwise): nothing but the tables' own names is
    # written into the SQL.
    inserted = [_MESSAGES.c[key] for key in keys]
    logged = [_DECISIONS.c[key] for key in decision_keys]
    columns = ", ".join(_quoted(column.name) for column in inserted) + (", sent_at" if sent_now else "")
    values = ", ".join(f":{column.name}" for column in inserted) + (", now()" if sent_now else "")
    returned = ", ".join(_quoted(column.name) for column in _MESSAGES.columns)
    decided = ", ".join(
        f"CAST(:decision_{c.name} AS {_unsized(c.type.compile(dialect=_DIALECT))})" for c in logged
    )
    statement = f"""
WITH intent AS (
    INSERT INTO messages ({columns}) VALUES ({values})
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING {returned}
), decision AS (
    INSERT INTO send_decisions ({", ".join(_quoted(column.name) for column in logged)}, message_id)
    SELECT {decided}, id FROM intent
)
SELECT {returned} FROM intent
"""  # noqa: S608 (names of the tables' columns only, values bound)
    binds = [bindparam(key, type_=_MESSAGES.c[key].type) for key in keys]
    binds += [bindparam(f"decision_{key}", type_=_DECISIONS.c[key].type) for key in decision_keys]
    return text(statement).bindparams(*binds).columns(*_MESSAGES.columns)


async def record_intent_and_decision(
    session: AsyncSession, values: dict[str, Any], decision: Mapping[str, Any], *, sent_now: bool = False
) -> tuple[Message, bool]:
    """`record_intent`, with the guardrails' decision about it appended to the decision log (its
    `message_id` the intent's) in the same statement when, and only when, the intent is new; returns
    the message and whether it is new."""
    keys, decision_keys = tuple(sorted(values)), tuple(sorted(decision))
    parameters = values | {f"decision_{key}": value for key, value in decision.items()}
    connection = await session.connection()
    statement = _intent_and_decision(keys, decision_keys, sent_now)
    row = (await connection.execute(statement, parameters)).first()
    if row is not None:
        return Message(**row._mapping), True
    message = await find_by_idempotency_key(session, values["idempotency_key"])
    assert message is not None
    return message, False


async def update_message(session: AsyncSession, message_id: str, **values: Any) -> None:
    """Change a message's status, reason or provider details."""
    await session.execute(
        update(Message).where(Message.id == message_id).values(**values, updated_at=func.now())
    )


async def list_messages(
    session: AsyncSession,
    *,
    patient_id: str | None = None,
    enrollment_id: str | None = None,
    journey_key: str | None = None,
    campaign_run_id: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> Sequence[Message]:
    """Messages, newest first, filtered."""
    query = select(Message)
    if patient_id is not None:
        query = query.where(Message.patient_id == patient_id)
    if enrollment_id is not None:
        query = query.where(Message.enrollment_id == enrollment_id)
    if journey_key is not None:
        query = query.where(Message.journey_key == journey_key)
    if campaign_run_id is not None:
        query = query.where(Message.campaign_run_id == campaign_run_id)
    if channel is not None:
        query = query.where(Message.channel == channel)
    if status is not None:
        query = query.where(Message.status == status)
    if before is not None:
        query = query.where(Message.created_at < before)
    rows = await session.scalars(query.order_by(Message.created_at.desc(), Message.id).limit(limit))
    return rows.all()
