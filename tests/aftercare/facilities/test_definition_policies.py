"""Row-level security over definitions, below the API: a transaction of a caller limited to a facility
reads the group's, its own and its ancestors' definitions, and cannot write another facility's or the
group's, whatever the statement."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.facilities.scope import enter_scope, request_boundary
from models.segment_tables import Segment

FACILITIES = [("group", None), ("north", "group"), ("north-clinic", "north"), ("south", "group")]


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        for key, parent in FACILITIES:
            await session.execute(
                text("INSERT INTO facilities (key, name, timezone, parent) VALUES (:k, :k, 'UTC', :p)"),
                {"k": key, "p": parent},
            )
        for key, facility in (("everyone", None), ("north-only", "north"), ("south-only", "south")):
            session.add(
                Segment(key=key, version=1, name=key, definition={}, content_hash="x", facility=facility)
            )


async def _write(sessions: async_sessionmaker[AsyncSession], segment: Segment) -> None:
    async with sessions.begin() as session:
        session.add(segment)


def _segment(key: str, facility: str | None) -> Segment:
    return Segment(key=key, version=1, name=key, definition={}, content_hash="y", facility=facility)


async def test_a_clinic_reads_the_group_s_and_its_ancestors_definitions_only(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _seed(sessions)
    with request_boundary():
        enter_scope(frozenset({"north-clinic"}))
        async with sessions.begin() as session:
            seen = set(await session.scalars(select(Segment.key)))
    assert seen == {"everyone", "north-only"}
    with request_boundary():
        enter_scope(frozenset({"south"}))
        async with sessions.begin() as session:
            seen = set(await session.scalars(select(Segment.key)))
    assert seen == {"everyone", "south-only"}


@pytest.mark.parametrize("facility", [None, "north", "south"])
async def test_a_clinic_cannot_write_above_or_beside_itself(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession], facility: str | None
) -> None:
    await _seed(sessions)
    with request_boundary():
        enter_scope(frozenset({"north-clinic"}))
        with pytest.raises(ProgrammingError, match="row-level security"):
            await _write(sessions, _segment("written", facility))
    with request_boundary():
        enter_scope(frozenset({"north-clinic"}))
        async with sessions.begin() as session:
            session.add(_segment("own", "north-clinic"))
            shared = (
                await session.execute(text("UPDATE segments SET name = 'x' WHERE key = 'everyone'"))
            ).rowcount
    assert shared == 0
