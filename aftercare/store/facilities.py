"""Facilities and where each patient belongs.

A patient belongs to the facility whose `Organization` manages them (`Patient.managingOrganization`) and
to the facilities of their encounters (`Encounter.serviceProvider`); a patient matched by neither
belongs to the group's first root facility (an existing install's `default`), so nothing is orphaned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.array_rows import array_insert
from aftercare.facilities.voice import PRIMARY_ORDER
from models.facility_tables import Facility, PatientFacility
from models.tables import FhirSource, Patient, table_of

_PLACED = table_of(PatientFacility)
_PLACE = array_insert(
    _PLACED, ("patient_id", "facility", "source"), "ON CONFLICT (patient_id, facility) DO NOTHING"
)


class FacilityConflict(ValueError):
    """The facility cannot be made as asked (a key or organization taken, an unknown parent)."""


async def create_facility(session: AsyncSession, values: dict[str, Any]) -> Facility:
    """Add a facility in the caller's transaction."""
    if await session.get(Facility, values["key"]) is not None:
        raise FacilityConflict(f"a facility {values['key']!r} exists")
    parent = values.get("parent")
    if parent is not None and await session.get(Facility, parent) is None:
        raise FacilityConflict(f"no parent facility {parent!r}")
    organization = values.get("organization")
    if organization and await session.scalar(
        select(Facility.key).where(Facility.organization == organization)
    ):
        raise FacilityConflict(f"{organization} already belongs to a facility")
    row = Facility(**values)
    session.add(row)
    await session.flush()
    return row


async def list_facilities(session: AsyncSession) -> list[Facility]:
    """Every facility, roots first, then by key."""
    rows = await session.scalars(select(Facility).order_by(Facility.parent.is_not(None), Facility.key))
    return list(rows)


def subtree(facilities: Sequence[Facility], roots: Iterable[str]) -> set[str]:
    """The keys of `roots` and everything below them."""
    children: dict[str | None, list[str]] = {}
    for facility in facilities:
        children.setdefault(facility.parent, []).append(facility.key)
    known = {facility.key for facility in facilities}
    reached, stack = set(), [key for key in roots if key in known]
    while stack:
        key = stack.pop()
        if key not in reached:
            reached.add(key)
            stack.extend(children.get(key, []))
    return reached


def placed_in(facilities: Collection[str]) -> Select[tuple[str]]:
    """The ids of the patients placed in these facilities (an indexed lookup)."""
    return select(_PLACED.c.patient_id).where(_PLACED.c.facility.in_(sorted(facilities)))


# Facilities with an ordinal below this have a bit in `patients.facility_bits` (migration `0018`).
FACILITY_BITS = 63


@dataclass(frozen=True)
class FacilityReach:
    """How to tell a patient row of the reached facilities: the bits of those with one (`mask`), and
    the keys of those without (`overflow`, ordinal 63 or more: looked up in `patient_facilities`)."""

    mask: int
    overflow: tuple[str, ...]


async def facility_reach(session: AsyncSession, facilities: Collection[str]) -> FacilityReach:
    """What filters patient rows to `facilities` (ordinals never change, so any snapshot's do)."""
    ordinals = dict((await session.execute(select(Facility.key, Facility.ordinal))).tuples().all())
    reached = set(facilities) & ordinals.keys()
    mask = sum(1 << ordinals[key] for key in reached if ordinals[key] < FACILITY_BITS)
    overflow = tuple(sorted(key for key in reached if ordinals[key] >= FACILITY_BITS))
    return FacilityReach(mask, overflow)


def audience_reach(
    facilities: Sequence[Facility], grants: Iterable[str], owners: Iterable[str | None]
) -> set[str] | None:
    """The facilities whose patients a campaign run reaches: the launching caller's subtrees (`grants`,
    none: the whole group), within the subtree of each definition's owning facility; None: everyone."""
    grants = list(grants)
    reach = subtree(facilities, grants) if grants else None
    for owner in owners:
        if owner is not None:
            owned = subtree(facilities, [owner])
            reach = owned if reach is None else reach & owned
    return reach


@dataclass(frozen=True)
class _Map:
    by_organization: dict[str, str]
    fallback: str | None


async def _map(session: AsyncSession) -> _Map:
    rows = (
        await session.execute(
            select(Facility.key, Facility.organization, Facility.parent).order_by(
                Facility.created_at, Facility.key
            )
        )
    ).all()
    fallback = next((key for key, _, parent in rows if parent is None), None)
    return _Map({organization: key for key, organization, _ in rows if organization}, fallback)


def _reference(value: Any) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    return reference if isinstance(reference, str) else None


def _claims(resources: Sequence[dict[str, Any]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(patient id, organization reference, source) pairs, and the ids of every Patient seen."""
    claims: list[tuple[str, str, str]] = []
    patients: list[str] = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient" and isinstance(resource.get("id"), str):
            patients.append(resource["id"])
            organization = _reference(resource.get("managingOrganization"))
            if organization:
                claims.append((resource["id"], organization, "managing_organization"))
        elif kind == "Encounter":
            subject = _reference(resource.get("subject")) or ""
            organization = _reference(resource.get("serviceProvider"))
            if subject.startswith("Patient/") and organization:
                claims.append((subject.removeprefix("Patient/"), organization, "encounter"))
    return claims, patients


# The labels under which resources read from a registered FHIR source are stored (`poll:<key>`, ...).
SOURCE_LABELS = ("poll:", "notification:", "export:")


async def source_facility(session: AsyncSession, source: str | None) -> str | None:
    """The facility of the FHIR source a stored-resource label names, if it has one."""
    prefix = next((label for label in SOURCE_LABELS if source and source.startswith(label)), None)
    if source is None or prefix is None:
        return None
    facility: str | None = await session.scalar(
        select(FhirSource.facility).where(FhirSource.key == source.removeprefix(prefix))
    )
    return facility


async def place_patients(
    session: AsyncSession, resources: Sequence[dict[str, Any]], source: str | None = None
) -> None:
    """Record the facilities these current Patients and Encounters place their patients in: their
    organizations' and that of the FHIR source they were read from (`source`, the stored label)."""
    claims, patients = _claims(resources)
    if not claims and not patients:
        return
    mapping = await _map(session)
    rows = [
        {"patient_id": patient_id, "facility": mapping.by_organization[organization], "source": how}
        for patient_id, organization, how in claims
        if organization in mapping.by_organization
    ]
    from_source = await source_facility(session, source) if patients else None
    if from_source is not None:
        rows += [
            {"patient_id": patient_id, "facility": from_source, "source": "fhir_source"}
            for patient_id in patients
        ]
    placed = {row["patient_id"] for row in rows}
    unplaced = [patient_id for patient_id in patients if patient_id not in placed]
    if unplaced and mapping.fallback is not None:
        known = set(
            await session.scalars(
                select(PatientFacility.patient_id).where(PatientFacility.patient_id.in_(unplaced))
            )
        )
        rows += [
            {"patient_id": patient_id, "facility": mapping.fallback, "source": "default"}
            for patient_id in unplaced
            if patient_id not in known
        ]
    if rows:
        await session.execute(_PLACE.statement, _PLACE.parameters(rows))


_PLACEMENTS = (
    select(Patient.id, PatientFacility.facility)
    .outerjoin(PatientFacility, PatientFacility.patient_id == Patient.id)
    .where(Patient.id.in_(bindparam("patient_ids", expanding=True)))
    .order_by(Patient.id, *PRIMARY_ORDER)
)


@dataclass(frozen=True)
class Placements:
    """Which of some patients the store knows, and the facilities each is placed in, the one they hear
    from first: what enrolling them needs, read in one query."""

    known: frozenset[str]
    facilities: dict[str, tuple[str, ...]]


async def placements_of(session: AsyncSession, patient_ids: Iterable[str]) -> Placements:
    """The patients of `patient_ids` the store knows, with their facilities."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return Placements(frozenset(), {})
    rows = await (await session.connection()).execute(_PLACEMENTS, {"patient_ids": wanted})
    facilities: dict[str, list[str]] = {}
    for patient_id, facility in rows:
        placed = facilities.setdefault(patient_id, [])
        if facility is not None:
            placed.append(facility)
    return Placements(frozenset(facilities), {key: tuple(value) for key, value in facilities.items()})


async def enrollment_facilities(
    session: AsyncSession,
    patient_ids: Iterable[str],
    owner: str | None,
    *,
    placements: Placements | None = None,
) -> dict[str, str]:
    """The facility each patient's enrollment in a journey of `owner` (none: the group's) is made for:
    the one they hear from, within the owner's subtree. A patient placed in none of it is left out.
    `placements` already read (`placements_of`) spare the query."""
    allowed = subtree(await list_facilities(session), [owner]) if owner else None
    wanted = sorted(set(patient_ids))
    if placements is not None:
        rows = [
            (patient_id, facility)
            for patient_id in wanted
            for facility in placements.facilities.get(patient_id, ())
        ]
    else:
        read = await session.execute(
            select(PatientFacility.patient_id, PatientFacility.facility)
            .where(PatientFacility.patient_id.in_(wanted))
            .order_by(PatientFacility.patient_id, *PRIMARY_ORDER)
        )
        rows = [(patient_id, facility) for patient_id, facility in read]
    chosen: dict[str, str] = {}
    for patient_id, facility in rows:
        if patient_id not in chosen and (allowed is None or facility in allowed):
            chosen[patient_id] = facility
    return chosen


async def facilities_of(session: AsyncSession, patient_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each patient's facilities, by key."""
    result: dict[str, list[str]] = {patient_id: [] for patient_id in patient_ids}
    rows = await session.execute(
        select(PatientFacility.patient_id, PatientFacility.facility)
        .where(PatientFacility.patient_id.in_(list(patient_ids)))
        .order_by(PatientFacility.patient_id, PatientFacility.added_at, PatientFacility.facility)
    )
    for patient_id, facility in rows:
        result.setdefault(patient_id, []).append(facility)
    return result


class FacilityInUse(FacilityConflict):
    """The facility still has records of its own (it cannot be removed)."""


async def update_facility(session: AsyncSession, row: Facility, values: dict[str, Any]) -> Facility:
    """Change a facility in the caller's transaction: its parent must exist and not be below it, its
    organization must be no other facility's."""
    parent = values.get("parent")
    if parent is not None and parent != row.parent:
        facilities = await list_facilities(session)
        if parent not in {facility.key for facility in facilities}:
            raise FacilityConflict(f"no parent facility {parent!r}")
        if parent in subtree(facilities, [row.key]):
            raise FacilityConflict(f"{parent!r} is {row.key!r} or below it: the tree would be a loop")
    organization = values.get("organization")
    if organization and await session.scalar(
        select(Facility.key).where(Facility.organization == organization, Facility.key != row.key)
    ):
        raise FacilityConflict(f"{organization} already belongs to a facility")
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    return row


# What may belong to a facility, as (what it is called, the query counting it).
_HOLDINGS = (
    ("facilities below it", "SELECT count(*) FROM facilities WHERE parent = :key"),
    ("patients", "SELECT count(*) FROM patient_facilities WHERE facility = :key"),
    ("templates", "SELECT count(DISTINCT key) FROM templates WHERE facility = :key"),
    ("journeys", "SELECT count(DISTINCT key) FROM journeys WHERE facility = :key"),
    ("segments", "SELECT count(DISTINCT key) FROM segments WHERE facility = :key"),
    ("campaigns", "SELECT count(DISTINCT key) FROM campaigns WHERE facility = :key"),
    ("FHIR sources", "SELECT count(*) FROM fhir_sources WHERE facility = :key"),
    ("enrollments", "SELECT count(*) FROM enrollments WHERE facility = :key"),
    ("tasks", "SELECT count(*) FROM tasks WHERE facility = :key"),
    ("send decisions", "SELECT count(*) FROM send_decisions WHERE facility = :key"),
    ("messages", "SELECT count(*) FROM messages WHERE facility = :key"),
    ("API keys", "SELECT count(*) FROM api_keys WHERE :key = ANY(facilities) AND revoked_at IS NULL"),
)


async def holdings(session: AsyncSession, key: str) -> dict[str, int]:
    """How many records of each kind belong to the facility (kinds with none are left out)."""
    query = "SELECT " + ", ".join(f"({sql})" for _, sql in _HOLDINGS)
    counts = (await session.execute(text(query), {"key": key})).one()
    return {name: int(count) for (name, _), count in zip(_HOLDINGS, counts, strict=True) if count}


async def delete_facility(session: AsyncSession, row: Facility) -> None:
    """Remove a facility that holds nothing; raises `FacilityInUse` naming what it still holds."""
    held = await holdings(session, row.key)
    if held:
        listed = ", ".join(f"{count} {name}" for name, count in held.items())
        raise FacilityInUse(f"facility {row.key!r} still has {listed}; move or remove them first")
    await session.delete(row)
    await session.flush()
