"""Identity records: identifiers of patient records, the person each record belongs to, merges (with
their evidence, reversible) and candidates for review.

A person's id is the id of the record that survived its merges; a record never merged is its own
person. `record_identities` runs in the transaction that stores Patient resources, with a fixed number
of statements per batch (a merge adds a few of its own; merges are rare).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, Date, String, any_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.db.array_rows import ArrayInsert, array_insert
from aftercare.fhir.patient_profile import profile_from_patient
from aftercare.identity.matching import Identifier, Match, find_matches
from aftercare.identity.rules import IDENTIFIER_RULE, MatchProfile, Rule
from models.tables import IdentityCandidate, IdentityMerge, Patient, PatientIdentifier, PatientLink, table_of

_CHUNK = 1000
_DIALECT = postgresql.dialect()
_TEXT = 300
AUTOMATIC = "aftercare:identity"


class IdentityError(Exception):
    """A merge or reversal that cannot be done; the message says why."""


class AlreadyOnePerson(IdentityError):
    """The two records already belong to the same person."""


class MergeNotReversible(IdentityError):
    """The merge was reversed already, or a later merge moved the same records."""


@dataclass
class IdentityOutcome:
    """What recording a batch of Patient records did."""

    merges: list[int] = field(default_factory=list)
    candidates: int = 0


def identifiers_of(patient: dict[str, Any]) -> list[Identifier]:
    """The (system, value) identifiers of a Patient resource; ones without a system are not comparable."""
    found: list[Identifier] = []
    for item in patient.get("identifier") or []:
        if not isinstance(item, dict):
            continue
        system, value = item.get("system"), item.get("value")
        if isinstance(system, str) and isinstance(value, str) and system and value.strip():
            pair = (system[:_TEXT], value.strip()[:_TEXT])
            if pair not in found:
                found.append(pair)
    return found


def match_profile(patient: dict[str, Any], phone_region: str) -> MatchProfile:
    """What the rules compare about a Patient resource."""
    profile = profile_from_patient(patient, "", phone_region)
    return MatchProfile(
        record_id=profile.id,
        phone=profile.phone,
        email=profile.email,
        given=profile.given,
        family=profile.family,
        birth_date=profile.birth_date,
    )


async def record_identities(
    session: AsyncSession, patients: Sequence[dict[str, Any]], *, phone_region: str, rules: Sequence[Rule]
) -> IdentityOutcome:
    """Record the identifiers of these current Patient resources, give each record its person link, then
    merge the records that match automatically and queue the others for review."""
    outcome = IdentityOutcome()
    by_id = {patient["id"]: patient for patient in patients if isinstance(patient.get("id"), str)}
    if not by_id:
        return outcome
    ids = sorted(by_id)
    identifiers = {record: identifiers_of(patient) for record, patient in by_id.items()}
    await _replace_identifiers(session, identifiers)
    await _insert(
        session, table_of(PatientLink), [{"record_id": record, "person_id": record} for record in ids]
    )
    profiles = [match_profile(by_id[record], phone_region) for record in ids]
    holders = (
        await _holders(session, {pair for pairs in identifiers.values() for pair in pairs})
        if any(rule.name == IDENTIFIER_RULE for rule in rules)
        else {}
    )
    known = await _known_profiles(session, profiles, rules)
    involved = {*ids, *(record for records in holders.values() for record in records)}
    involved.update(profile.record_id for profile in known)
    persons = await _persons(session, involved)
    blocked = await _blocked_pairs(session, involved)
    matches = find_matches(profiles, identifiers, holders, known, rules, same_person=persons, blocked=blocked)
    for match in matches:
        if match.rule.action == "auto":
            merge = await _merge_match(session, match, persons)
            if merge is not None:
                outcome.merges.append(merge)
    reviews = [
        {"record_id": m.record_id, "other_id": m.other_id, "rule": m.rule.name, "evidence": m.evidence}
        for m in matches
        if m.rule.action == "review" and persons.get(m.record_id) != persons.get(m.other_id)
    ]
    outcome.candidates = await _insert(session, table_of(IdentityCandidate), reviews)
    return outcome


async def _merge_match(session: AsyncSession, match: Match, persons: dict[str, str]) -> int | None:
    survivor, merged = (
        persons.get(match.other_id, match.other_id),
        persons.get(match.record_id, match.record_id),
    )
    if survivor == merged:
        return None
    merge = await merge_records(
        session, match.other_id, match.record_id, rule=match.rule.name, evidence=match.evidence, by=AUTOMATIC
    )
    for record, person in list(persons.items()):
        if person == merged:
            persons[record] = survivor
    persons[match.record_id] = survivor
    return merge.id


async def _replace_identifiers(session: AsyncSession, identifiers: dict[str, list[Identifier]]) -> None:
    records = sorted(identifiers)
    for start in range(0, len(records), _CHUNK):
        await session.execute(_FORGET_IDENTIFIERS, {"records": records[start : start + _CHUNK]})
    rows = [
        {"system": system, "value": value, "patient_id": record}
        for record, pairs in identifiers.items()
        for system, value in pairs
    ]
    await _insert(session, table_of(PatientIdentifier), rows)


# Record ids as one array (`column = ANY(:records)`): one statement text whatever their number.
_RECORDS = bindparam("records", type_=ARRAY(String))
_FORGET_IDENTIFIERS = delete(PatientIdentifier).where(PatientIdentifier.patient_id == any_(_RECORDS))
_INSERTS: dict[tuple[str, tuple[str, ...]], ArrayInsert] = {}


async def _insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert rows (each with the same columns), skipping ones that conflict; returns how many were new."""
    if not rows:
        return 0
    columns = tuple(rows[0])
    statement = _INSERTS.get((table.name, columns))
    if statement is None:
        returned = _DIALECT.identifier_preparer.quote(columns[0])
        statement = array_insert(table, columns, f"ON CONFLICT DO NOTHING RETURNING {returned}")
        _INSERTS[(table.name, columns)] = statement
    inserted = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        result = await session.execute(statement.statement, statement.parameters(chunk))
        inserted += len(result.all())
    return inserted


# The (system, value) pairs travel as two arrays, side by side.
_HOLDERS = text(
    """
    SELECT i.system, i.value, i.patient_id FROM patient_identifiers i
    WHERE (i.system, i.value) IN (
        SELECT * FROM unnest(CAST(:systems AS VARCHAR[]), CAST(:values AS VARCHAR[]))
    )
    """
)


async def _holders(session: AsyncSession, pairs: set[Identifier]) -> dict[Identifier, set[str]]:
    found: dict[Identifier, set[str]] = defaultdict(set)
    items = sorted(pairs)
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        rows = await session.execute(
            _HOLDERS, {"systems": [pair[0] for pair in chunk], "values": [pair[1] for pair in chunk]}
        )
        for system, value, record in rows:
            found[(system, value)].add(record)
    return found


# The compared values as arrays: a statement text for each set of rules, whatever the batch.
_DATES = bindparam("dates", type_=ARRAY(Date))
_PHONES = bindparam("phones", type_=ARRAY(String))
_EMAILS = bindparam("emails", type_=ARRAY(String))
_FAMILIES = bindparam("families", type_=ARRAY(String))


async def _known_profiles(
    session: AsyncSession, profiles: list[MatchProfile], rules: Sequence[Rule]
) -> list[MatchProfile]:
    """Stored records that share a compared value with an arriving one (the rules then decide)."""
    fields = {field for rule in rules for field in rule.fields}
    if not fields:
        return []
    conditions = []
    values: dict[str, list[Any]] = {}
    if "birth_date" in fields:
        dates = sorted({p.birth_date for p in profiles if p.birth_date is not None})
        if dates:
            conditions.append(Patient.birth_date == any_(_DATES))
            values["dates"] = dates
    unbounded = {field for rule in rules if "birth_date" not in rule.fields for field in rule.fields}
    if "phone" in unbounded:
        conditions.append(Patient.phone == any_(_PHONES))
        values["phones"] = sorted({p.phone for p in profiles if p.phone})
    if "email" in unbounded:
        conditions.append(Patient.email == any_(_EMAILS))
        values["emails"] = sorted({p.email for p in profiles if p.email})
    if "name" in unbounded:
        conditions.append(Patient.family == any_(_FAMILIES))
        values["families"] = sorted({p.family for p in profiles if p.family})
    if not conditions:
        return []
    rows = await session.execute(
        select(
            Patient.id, Patient.phone, Patient.email, Patient.given, Patient.family, Patient.birth_date
        ).where(or_(*conditions)),
        values,
    )
    return [MatchProfile(*row) for row in rows]


_PERSONS = select(PatientLink.record_id, PatientLink.person_id).where(PatientLink.record_id == any_(_RECORDS))


async def _persons(session: AsyncSession, records: set[str]) -> dict[str, str]:
    found = {record: record for record in records}
    items = sorted(records)
    for start in range(0, len(items), _CHUNK):
        rows = await session.execute(_PERSONS, {"records": items[start : start + _CHUNK]})
        found.update({record: person for record, person in rows})
    return found


_REVERSED_MERGES = select(IdentityMerge.person_id, IdentityMerge.record_id, IdentityMerge.evidence).where(
    IdentityMerge.reversed_at.is_not(None),
    or_(IdentityMerge.person_id == any_(_RECORDS), IdentityMerge.record_id == any_(_RECORDS)),
)
_DISMISSED = select(IdentityCandidate.record_id, IdentityCandidate.other_id).where(
    IdentityCandidate.status == "dismissed",
    or_(IdentityCandidate.record_id == any_(_RECORDS), IdentityCandidate.other_id == any_(_RECORDS)),
)


async def _blocked_pairs(session: AsyncSession, records: set[str]) -> set[frozenset[str]]:
    """Pairs a person decided are not the same: reversed merges and dismissed candidates."""
    items = sorted(records)
    blocked: set[frozenset[str]] = set()
    for start in range(0, len(items), _CHUNK):
        chunk = {"records": items[start : start + _CHUNK]}
        for person, record, evidence in await session.execute(_REVERSED_MERGES, chunk):
            blocked.add(frozenset({person, record}))
            pair = evidence.get("records")
            if isinstance(pair, list) and len(pair) == 2:
                blocked.add(frozenset(pair))
        dismissed = await session.execute(_DISMISSED, chunk)
        blocked.update(frozenset(pair) for pair in dismissed)
    return blocked


# --- reading ----------------------------------------------------------------------------------------


async def person_of(session: AsyncSession, record_id: str) -> str | None:
    """The person a patient record belongs to now, or None for a record the store has never seen."""
    person: str | None = await session.scalar(
        select(PatientLink.person_id).where(PatientLink.record_id == record_id)
    )
    if person is not None:
        return person
    known = await session.scalar(select(Patient.id).where(Patient.id == record_id))
    return record_id if known is not None else None


async def records_of(session: AsyncSession, person_id: str) -> list[str]:
    """The patient records of a person (the person's own record first)."""
    rows = await session.scalars(
        select(PatientLink.record_id)
        .where(PatientLink.person_id == person_id)
        .order_by(PatientLink.record_id)
    )
    return [person_id, *(record for record in rows if record != person_id)]


async def identifiers_of_records(
    session: AsyncSession, records: Sequence[str]
) -> Sequence[PatientIdentifier]:
    """The identifiers of these records."""
    rows = await session.scalars(
        select(PatientIdentifier)
        .where(PatientIdentifier.patient_id.in_(records))
        .order_by(PatientIdentifier.patient_id, PatientIdentifier.system)
    )
    return rows.all()


async def merges_of(session: AsyncSession, records: Sequence[str]) -> Sequence[IdentityMerge]:
    """Merges (current and reversed) that involved these records, newest first."""
    rows = await session.scalars(
        select(IdentityMerge)
        .where(or_(IdentityMerge.person_id.in_(records), IdentityMerge.record_id.in_(records)))
        .order_by(IdentityMerge.merged_at.desc(), IdentityMerge.id.desc())
    )
    return rows.all()


async def open_candidates(session: AsyncSession, limit: int = 100) -> Sequence[IdentityCandidate]:
    """Candidates waiting for review, oldest first."""
    rows = await session.scalars(
        select(IdentityCandidate)
        .where(IdentityCandidate.status == "open")
        .order_by(IdentityCandidate.found_at, IdentityCandidate.id)
        .limit(limit)
    )
    return rows.all()


# --- merging and reversing -----------------------------------------------------------------------------


async def merge_records(
    session: AsyncSession, survivor: str, merged: str, *, rule: str, evidence: dict[str, Any], by: str | None
) -> IdentityMerge:
    """Merge the person of `merged` into the person of `survivor`; all its records move with it.

    The merge row keeps the records moved and where they were, so that `reverse_merge` restores them.
    """
    into, away = await _person_or_self(session, survivor), await _person_or_self(session, merged)
    if into == away:
        raise AlreadyOnePerson(f"{merged!r} and {survivor!r} are already one person")
    moved = (
        await session.execute(
            select(PatientLink.record_id, PatientLink.merge_id).where(PatientLink.person_id == away)
        )
    ).all()
    previous = [{"record_id": record, "person_id": away, "merge_id": merge_id} for record, merge_id in moved]
    if not any(item["record_id"] == away for item in previous):
        previous.append({"record_id": away, "person_id": away, "merge_id": None})
        await _insert(session, table_of(PatientLink), [{"record_id": away, "person_id": away}])
    merge = IdentityMerge(
        person_id=into, record_id=away, rule=rule, evidence={**evidence, "moved": previous}, merged_by=by
    )
    session.add(merge)
    await session.flush()
    records = [item["record_id"] for item in previous]
    await session.execute(
        update(PatientLink)
        .where(PatientLink.record_id.in_(records))
        .values(person_id=into, merge_id=merge.id, linked_at=func.now())
    )
    group = [*records, *(await records_of(session, into))]
    await session.execute(
        update(IdentityCandidate)
        .where(
            IdentityCandidate.status == "open",
            IdentityCandidate.record_id.in_(group),
            IdentityCandidate.other_id.in_(group),
        )
        .values(status="merged", resolved_at=func.now())
    )
    return merge


async def _person_or_self(session: AsyncSession, record: str) -> str:
    return await person_of(session, record) or record


async def reverse_merge(
    session: AsyncSession, merge_id: int, *, reason: str, by: str | None
) -> IdentityMerge | None:
    """Undo a merge: the records it moved return to the person they belonged to. None for an unknown
    merge; MergeNotReversible when it was reversed already or a later merge moved its records."""
    merge = await session.get(IdentityMerge, merge_id, with_for_update=True)
    if merge is None:
        return None
    if merge.reversed_at is not None:
        raise MergeNotReversible(f"merge {merge_id} was reversed already")
    previous: list[dict[str, Any]] = list(merge.evidence.get("moved") or [])
    records = [item["record_id"] for item in previous]
    links = await session.execute(
        select(PatientLink.record_id, PatientLink.merge_id).where(PatientLink.record_id.in_(records))
    )
    current: dict[str, int | None] = {record: merge_id for record, merge_id in links}
    if any(current.get(record) != merge.id for record in records):
        raise MergeNotReversible(f"a later merge moved the records of merge {merge_id}: reverse it first")
    for item in previous:
        await session.execute(
            update(PatientLink)
            .where(PatientLink.record_id == item["record_id"])
            .values(person_id=item["person_id"], merge_id=item["merge_id"], linked_at=func.now())
        )
    merge.reversed_at = await session.scalar(select(func.now()))
    merge.reversed_by = by
    merge.reversal_reason = reason
    await session.flush()
    return merge
