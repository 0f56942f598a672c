"""Message intents: recorded once per idempotency key, with the send's decision logged beside a new one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.store.messages import record_intent_and_decision
from models.tables import Message, SendDecision

pytestmark = pytest.mark.usefixtures("empty_database")


def intent(message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "idempotency_key": "enr-1/notify/1",
        "patient_id": "p-1",
        "channel": "sms",
        "to": "+15550100",
        "body": "Hi",
        "status": "pending",
        "headers": {"X-Test": "1"},
    }


def decision(**changes: Any) -> dict[str, Any]:
    return {
        "patient_id": "p-1",
        "idempotency_key": "enr-1/notify/1",
        "purpose": "care_coordination",
        "decision": "sent",
        "rule": "allowed",
        "channel": "sms",
        "defer_until": None,
    } | changes


async def test_a_new_intent_logs_its_decision_and_a_repeat_returns_the_first_and_logs_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        first, new = await record_intent_and_decision(session, intent("m-1"), decision(), sent_now=True)
    async with sessions.begin() as session:
        again, repeated = await record_intent_and_decision(session, intent("m-2"), decision(rule="other"))
    async with sessions() as session:
        messages = list(await session.scalars(select(Message)))
        logged = [(d.message_id, d.rule, d.purpose) for d in await session.scalars(select(SendDecision))]
    assert (new, repeated) == (True, False)
    assert (first.id, again.id, first.headers, first.sent_at is not None) == (
        "m-1",
        "m-1",
        {"X-Test": "1"},
        True,
    )
    assert [m.id for m in messages] == ["m-1"]
    assert logged == [("m-1", "allowed", "care_coordination")]


async def test_a_decision_value_too_long_for_its_column_is_refused_not_cut(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(DBAPIError, match="too long"):
        async with sessions.begin() as session:
            await record_intent_and_decision(session, intent("m-1"), decision(purpose="p" * 40))
    async with sessions() as session:
        assert list(await session.scalars(select(Message))) == []
