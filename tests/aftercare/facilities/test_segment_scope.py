"""Segment evaluation for a caller limited to some facilities: the one place row-level security is
lifted (`explicit_scope`), for one statement at a time, which reads only `patients` filtered by the
facilities the transaction reaches. For every kind of criterion, the caller's members, preview counts
and a patient's segments are the whole group's restricted to their facilities, never another
facility's patient; and the rest of the transaction is under the policies again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.facilities.scope import enter_scope, explicit_scope, request_boundary
from aftercare.segments.evaluate import limited_to, members, preview, segments_of_patient
from aftercare.segments.membership import current_members, refresh_membership
from aftercare.store.resources import store_resources
from aftercare.store.segments import publish_segment
from models.risk_tables import RiskScore
from models.segment import SegmentDefinition
from models.tables import ClinicalCondition, Patient
from tests.aftercare.segments.test_compiler import AS_OF, DAY, HBA1C, SNOMED, people, segment

__all__ = ["people"]  # the population of the compiler's tests: ann, bob, cy (deceased), dee

NORTH = {"ann", "cy"}
SOUTH = {"bob", "dee"}
EVERYONE = SegmentDefinition.model_validate(
    {"key": "everyone", "name": "Everyone", "criteria": {"age": {"gte": 0}}}
)

# Every kind of criterion, most matching patients of both facilities.
CRITERIA: list[dict[str, Any]] = [
    {"age": {"gte": 18}},
    {"not": {"age": {"gte": 65}}},
    {"gender": {"in": ["female", "male"]}},
    {"language": {"in": ["en", "es"]}},
    {"postal_code": {"in": ["02139", "10001"]}},
    {"condition": {"code": {"system": SNOMED, "code": "44054006"}}},
    {"observation": {"code": HBA1C, "value": {"gt": 7}}},
    {"observation": {"code": HBA1C, "latest": False, "value": {"gt": 9}}},
    {"encounter": {"discharged_within": "P7D"}},
    {"medication": {"authored_within": "P14D", "status": ["active", "stopped"]}},
    {"procedure": {"code": {"system": "sct", "code": "1"}}},
    {"allergy": {"code": {"system": "sct", "code": "peanut"}, "clinical_status": ["active", "resolved"]}},
    {"immunization": {"code": {"value_set": "influenza-vaccine"}}},
    {"appointment": {"missed_within": "P60D"}},
    {"engagement": {"contacted_within": "P30D"}},
    {"consent": {"channel": "sms", "status": "granted"}},
    {"not": {"consent": {"channel": "sms", "status": "revoked"}}},
    {"risk": {"score": "lace", "gte": 10}},
    {"segment": "adults"},
    {"any": [{"gender": {"eq": "female"}}, {"condition": {"code": {"system": SNOMED, "code": "44054006"}}}]},
    {"all": [{"age": {"gte": 18}}, {"not": {"segment": "adults"}}]},
]


@pytest.fixture
async def two_facilities(sessions: async_sessionmaker[AsyncSession], people: None) -> None:
    """ann and cy in north, bob and dee in south; ann and bob with a LACE of 12; the `adults` segment."""
    async with sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO facilities (key, name, timezone, parent) VALUES ('group', 'Group', 'UTC', NULL),"
                " ('north', 'North', 'UTC', 'group'), ('south', 'South', 'UTC', 'group')"
            )
        )
        for patient_id in sorted(NORTH | SOUTH):
            await session.execute(
                text("INSERT INTO patient_facilities (patient_id, facility, source) VALUES (:p, :f, 'test')"),
                {"p": patient_id, "f": "north" if patient_id in NORTH else "south"},
            )
        for patient_id in ("ann", "bob"):
            session.add(
                RiskScore(
                    encounter_id=f"risk-{patient_id}",
                    score="lace",
                    patient_id=patient_id,
                    value=12,
                    components={},
                    algorithm="test",
                    discharged_at=AS_OF - 3 * DAY,
                )
            )
        await publish_segment(session, segment({"age": {"gte": 18}}, key="adults"))


async def _evaluate(
    sessions: async_sessionmaker[AsyncSession], grant: str | None, definition: SegmentDefinition
) -> tuple[list[str], int, list[int], dict[str, bool]]:
    with request_boundary():
        if grant is not None:
            enter_scope(frozenset({grant}))
        async with sessions.begin() as session:
            found = await members(session, definition, AS_OF)
            previewed = await preview(session, definition, AS_OF, sample_size=10)
            assert previewed.sample == found
            per_patient = {
                patient_id: bool(await segments_of_patient(session, patient_id, [definition], AS_OF))
                for patient_id in sorted(NORTH | SOUTH)
            }
    return found, previewed.count, [count.count for count in previewed.criteria], per_patient


@pytest.mark.usefixtures("two_facilities")
async def test_every_criterion_finds_only_the_caller_s_facility_s_patients(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    across = 0
    for criteria in CRITERIA:
        definition = segment(criteria, include_deceased=True)
        group, count, _, per_patient = await _evaluate(sessions, None, definition)
        assert count == len(group)
        assert [p for p, member in per_patient.items() if member] == group
        across += bool(NORTH & set(group)) and bool(SOUTH & set(group))
        for grant, theirs in (("north", NORTH), ("south", SOUTH)):
            found, count, criteria_counts, per_patient = await _evaluate(sessions, grant, definition)
            assert found == [p for p in group if p in theirs], (grant, criteria)
            assert count == len(found)
            assert all(count <= len(theirs) for count in criteria_counts), (grant, criteria)
            assert {p for p, member in per_patient.items() if member} == set(found), (grant, criteria)
    assert (
        across >= len(CRITERIA) // 2
    )  # most criteria hold in both facilities: the filter is what splits them


@pytest.mark.usefixtures("two_facilities")
async def test_a_segment_owned_by_a_facility_holds_its_patients_only_even_for_the_whole_group(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    owned = segment({"age": {"gte": 0}}, include_deceased=True, facility="south")
    assert (await _evaluate(sessions, None, owned))[0] == ["bob"]
    assert (await _evaluate(sessions, "north", owned))[0] == []


async def _refresh(
    sessions: async_sessionmaker[AsyncSession], grant: str | None, definition: SegmentDefinition, days: int
) -> tuple[list[str], list[str]]:
    with request_boundary():
        if grant is not None:
            enter_scope(frozenset({grant}))
        async with sessions.begin() as session:
            refreshed = await refresh_membership(session, definition, AS_OF + days * DAY)
    return refreshed.entered, refreshed.exited


@pytest.mark.usefixtures("two_facilities")
async def test_a_scoped_refresh_opens_and_closes_its_facility_s_stays_only(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    discharged = segment({"encounter": {"discharged_within": "P7D"}}, key="discharged")
    everyone = segment({"gender": {"in": ["female", "male"]}}, key="everyone", include_deceased=True)
    async with sessions.begin() as session:
        await publish_segment(session, discharged)
        await publish_segment(session, everyone)
    assert await _refresh(sessions, "north", everyone, 0) == (["ann", "cy"], [])
    assert await _refresh(sessions, None, everyone, 0) == (["bob", "dee"], [])
    assert await _refresh(sessions, None, discharged, 0) == (["ann", "bob"], [])
    # A month on, both have left: north's caller closes ann's stay, not bob's.
    assert await _refresh(sessions, "north", discharged, 30) == ([], ["ann"])
    async with sessions() as session:
        assert list(await current_members(session, "discharged")) == ["bob"]
    assert await _refresh(sessions, None, discharged, 30) == ([], ["bob"])


@pytest.mark.usefixtures("two_facilities")
async def test_the_lifted_statement_reads_patients_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        filtered = str(await limited_to(session, select(Patient.id), ["north"]))
        assert "facility_bits" in filtered  # north has a bit: no look-up in patient_facilities
        assert "patient_facilities" not in filtered
        with pytest.raises(ValueError, match="reads only patients"):
            await limited_to(session, select(ClinicalCondition.patient_id), ["north"])
        with pytest.raises(ValueError, match="reads only patients"):
            await limited_to(session, select(Patient.id, ClinicalCondition.patient_id), ["north"])


@pytest.fixture
async def placed(empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
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


@pytest.mark.usefixtures("placed")
async def test_the_policies_come_back_after_the_segment_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with request_boundary():
        enter_scope(frozenset({"north"}))
        async with sessions.begin() as session:
            found = await members(session, EVERYONE, datetime.now(UTC))
            role = await session.scalar(text("SELECT current_setting('role')"))
            visible = set(await session.scalars(select(Patient.id)))
    assert found == ["north-0", "north-1", "north-2"]
    assert role == "aftercare_scoped"
    assert visible == set(found)


async def _fail_inside(session: AsyncSession) -> None:
    async with explicit_scope(session) as reach:
        assert reach == ["south"]
        raise ZeroDivisionError


@pytest.mark.usefixtures("placed")
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
