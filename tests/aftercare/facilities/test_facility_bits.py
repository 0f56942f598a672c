"""`patients.facility_bits` (migration `0018`): each facility's ordinal is a bit on the rows of the
patients placed in it, kept by the database whoever writes the placements or the patient (an import,
a move, a removal, a profile upsert, a scoped caller's write), and a scoped segment evaluation filters
by it; facilities with an ordinal of 63 or more have no bit and are looked up in `patient_facilities`."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.facilities.scope import enter_scope, request_boundary
from aftercare.segments.evaluate import limited_to, members
from aftercare.store.facilities import FACILITY_BITS, FacilityReach, facility_reach
from aftercare.store.resources import store_resources
from models.tables import Patient
from tests.aftercare.facilities.test_segment_scope import EVERYONE
from tests.aftercare.segments.test_compiler import AS_OF

ADD = "INSERT INTO facilities (key, name, timezone, parent, organization) VALUES (:k, :k, 'UTC', :p, :o)"
PLACE = "INSERT INTO patient_facilities (patient_id, facility, source) VALUES (:p, :f, 'test')"


def _patient(patient_id: str, organization: str) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "birthDate": "1970-01-01",
        "managingOrganization": {"reference": organization},
    }


@pytest.fixture
async def tree(empty_database: object, sessions: async_sessionmaker[AsyncSession]) -> None:
    """group (ordinal 0) above north (1) and south (2)."""
    async with sessions.begin() as session:
        await session.execute(text(ADD), {"k": "group", "p": None, "o": None})
        for key in ("north", "south"):
            await session.execute(text(ADD), {"k": key, "p": "group", "o": f"Organization/{key}"})


async def _bits(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        return dict((await session.execute(select(Patient.id, Patient.facility_bits))).tuples().all())


@pytest.mark.usefixtures("tree")
async def test_every_write_of_a_placement_or_a_patient_keeps_the_bits(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        ordinals = dict((await session.execute(text("SELECT key, ordinal FROM facilities"))).tuples().all())
        assert ordinals == {"group": 0, "north": 1, "south": 2}
        # FHIR intake: the profile and its placement in the statement that stores the resource.
        await store_resources(
            session,
            [_patient("ann", "Organization/north"), _patient("bob", "Organization/south")],
            source="import",
            phone_region="US",
        )
        # A placement made before the patient row exists is found when the row is inserted.
        await session.execute(text(PLACE), {"p": "cy", "f": "south"})
        await session.execute(text("INSERT INTO patients (id, version_id) VALUES ('cy', '1')"))
    assert await _bits(sessions) == {"ann": 0b010, "bob": 0b100, "cy": 0b100}
    async with sessions.begin() as session:
        await session.execute(text(PLACE), {"p": "ann", "f": "south"})  # a second facility
        await session.execute(
            text("UPDATE patient_facilities SET facility = 'north' WHERE patient_id = 'bob'")
        )
        await session.execute(text("DELETE FROM patient_facilities WHERE patient_id = 'cy'"))
    assert await _bits(sessions) == {"ann": 0b110, "bob": 0b010, "cy": 0}
    async with sessions.begin() as session:
        # A re-import upserts every profile column; the bits stay those of the placements.
        await store_resources(
            session, [_patient("ann", "Organization/north")], source="import", phone_region="US"
        )
        await session.execute(text("UPDATE patients SET facility_bits = 0 WHERE id = 'bob'"))  # recomputed
    assert await _bits(sessions) == {"ann": 0b110, "bob": 0b010, "cy": 0}


@pytest.mark.usefixtures("tree")
async def test_a_scoped_caller_s_write_sets_the_bits_of_every_placement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await session.execute(text("INSERT INTO patients (id, version_id) VALUES ('ann', '1')"))
        await session.execute(text(PLACE), {"p": "ann", "f": "south"})
    with request_boundary():
        enter_scope(frozenset({"north"}))
        async with sessions.begin() as session:
            assert await session.scalar(text("SELECT current_setting('role')")) == "aftercare_scoped"
            await session.execute(text(PLACE), {"p": "ann", "f": "north"})
    assert await _bits(sessions) == {"ann": 0b110}  # south's bit, which north's caller cannot see, stays


@pytest.mark.usefixtures("tree")
async def test_a_facility_s_ordinal_never_changes(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(DBAPIError, match="ordinal never changes"):
        async with sessions.begin() as session:
            await session.execute(text("UPDATE facilities SET ordinal = 7 WHERE key = 'north'"))


@pytest.mark.usefixtures("tree")
async def test_facilities_past_the_63rd_are_looked_up_in_their_placements(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        for index in range(FACILITY_BITS - 3):  # ordinals 3 to 62
            await session.execute(text(ADD), {"k": f"filler-{index}", "p": "group", "o": None})
        await session.execute(text(ADD), {"k": "far", "p": "group", "o": "Organization/far"})
        await store_resources(
            session,
            [_patient(f"{key}-1", f"Organization/{key}") for key in ("north", "south", "far")],
            source="import",
            phone_region="US",
        )
        assert await facility_reach(session, ["far", "north", "nowhere"]) == FacilityReach(0b10, ("far",))
        assert await facility_reach(session, ["filler-59"]) == FacilityReach(1 << 62, ())
        statement = str(await limited_to(session, select(Patient.id), ["far"]))
        assert "patient_facilities" in statement
        assert "facility_bits" not in statement
    assert (await _bits(sessions))["far-1"] == 0  # no bit for ordinal 63
    for grants, found in (
        ({"far"}, ["far-1"]),
        ({"north", "far"}, ["far-1", "north-1"]),
        ({"south"}, ["south-1"]),
        ({"filler-0"}, []),
    ):
        with request_boundary():
            enter_scope(frozenset(grants))
            async with sessions.begin() as session:
                assert await members(session, EVERYONE, AS_OF) == found, grants
