"""Segment evaluation for a caller limited to some facilities filters by facility itself (an indexed
predicate, with row-level security lifted for that one query): it finds only their patients, and the
rest of the transaction is under the policies again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.facilities.scope import enter_scope, explicit_scope, request_boundary
from aftercare.segments.evaluate import members, preview
from aftercare.store.resources import store_resources
from models.segment import SegmentDefinition
from models.tables import Patient

EVERYONE = SegmentDefinition.model_validate(
    {"key": "everyone", "name": "Everyone", "criteria": {"age": {"gte": 0}}}
)


@pytest.fixture
async def two_facilities(empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO facilities (key, name, timezone, parent, organization) VALUES "
                "('group', 'Group', 'UTC', NULL, NULL), ('north', 'North', 'UTC', 'group', 'Organization/n'),"
                "('south', 'South', 'UTC', 'group', 'Organization/s')"
            )
        )
        patients = [
            {
                "resourceType": "Patient",
                "id": f"{side}-{n}",
                "birthDate": "1970-01-01",
                "managingOrganization": {"reference": f"Organization/{side[0]}"},
            }
            for side in ("north", "south")
            for n in range(3)
        ]
        await store_resources(session, patients, source="import", phone_region="US")


@pytest.mark.usefixtures("two_facilities")
async def test_a_scoped_caller_s_segment_holds_only_their_patients_and_the_policies_come_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with request_boundary():
        enter_scope(frozenset({"north"}))
        async with sessions.begin() as session:
            found = await members(session, EVERYONE, datetime.now(UTC))
            previewed = await preview(session, EVERYONE, datetime.now(UTC))
            role = await session.scalar(text("SELECT current_setting('role')"))
            visible = set(await session.scalars(select(Patient.id)))
    assert found == ["north-0", "north-1", "north-2"]
    assert (previewed.count, previewed.sample) == (3, found)
    assert role == "aftercare_scoped"
    assert visible == set(found)


async def _fail_inside(session: AsyncSession) -> None:
    async with explicit_scope(session) as reach:
        assert reach == ["south"]
        raise ZeroDivisionError


@pytest.mark.usefixtures("two_facilities")
async def test_the_whole_group_is_not_filtered_and_a_failed_query_leaves_nothing_lifted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        assert len(await members(session, EVERYONE, datetime.now(UTC))) == 6
        async with explicit_scope(session) as reach:
            assert reach is None
    with request_boundary():
        enter_scope(frozenset({"south"}))
        async with sessions() as session:
            with pytest.raises(ZeroDivisionError):
                await _fail_inside(session)
            assert await session.scalar(text("SELECT current_setting('role')")) == "aftercare_scoped"
            assert len(set(await session.scalars(select(Patient.id)))) == 3
