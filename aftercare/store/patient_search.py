"""Finding patients: by name, birth date, identifier, phone or email, one row per person.

A record merged into another person is found through its own data, and answers as that person; the
merged-away record itself is never listed. Results are in name order (family, given, id), paged with
a keyset cursor, so a page costs the same however deep it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, exists, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from aftercare.fhir.phones import normalise_phone
from models.tables import Patient, PatientIdentifier, PatientLink

_LIKE_ESCAPE = "\\"


class CursorInvalidError(ValueError):
    """A cursor this search did not hand out."""


@dataclass(frozen=True)
class PatientQuery:
    """What to look for; every given part must match (`identifier` is `system|value` or a value)."""

    name: str | None = None
    birth_date: date | None = None
    identifier: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class PatientPage:
    """One page of persons, and the cursor of the next page (None on the last)."""

    patients: Sequence[Patient]
    next_cursor: str | None


def _sort_key() -> tuple[ColumnElement[str], ...]:
    family: ColumnElement[str] = func.lower(func.coalesce(Patient.family, ""))
    given: ColumnElement[str] = func.lower(func.coalesce(Patient.given, ""))
    return family, given, Patient.id.expression


def _like_prefix(text: str) -> str:
    escaped = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    return escaped.lower() + "%"


# The records a search matches, apart from the persons it lists.
_Record = aliased(Patient, name="record")


def _record_filters(query: PatientQuery, phone_region: str) -> list[ColumnElement[bool]]:
    """Conditions on a patient record (`_Record`) for each part of the query."""
    filters: list[ColumnElement[bool]] = []
    if query.name:
        # FHIR's `name` search: each word starts a word of the name, whatever the case. The word
        # anywhere (`%word%`) is what the trigram index `ix_patients_name_trgm` (migration 0013) finds;
        # its expression is written with a literal so that a prepared statement still matches it.
        full_name = func.lower(func.coalesce(_Record.name, literal_column("''")))
        for word in query.name.split():
            prefix = _like_prefix(word)
            filters.append(full_name.like("%" + prefix, escape=_LIKE_ESCAPE))
            filters.append(
                or_(
                    full_name.like(prefix, escape=_LIKE_ESCAPE),
                    full_name.like("% " + prefix, escape=_LIKE_ESCAPE),
                    full_name.like("%-" + prefix, escape=_LIKE_ESCAPE),
                )
            )
    if query.birth_date is not None:
        filters.append(_Record.birth_date == query.birth_date)
    if query.phone:
        e164 = normalise_phone(query.phone, phone_region).e164
        filters.append(_Record.phone == e164 if e164 else _Record.phone_raw == query.phone.strip())
    if query.email:
        filters.append(func.lower(_Record.email) == query.email.strip().lower())
    if query.identifier:
        system, separator, value = query.identifier.strip().rpartition("|")
        match = PatientIdentifier.value == value
        if separator and system:
            match = and_(match, PatientIdentifier.system == system)
        filters.append(_Record.id.in_(select(PatientIdentifier.patient_id).where(match).scalar_subquery()))
    return filters


def _person_of_record() -> ColumnElement[str]:
    link = select(PatientLink.person_id).where(PatientLink.record_id == _Record.id).scalar_subquery()
    return func.coalesce(link, _Record.id)


def encode_cursor(key: Sequence[str]) -> str:
    """The cursor that continues after the row with this sort key (as the database computed it)."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    """The sort key a cursor continues after."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as error:
        raise CursorInvalidError("the cursor is not one this search gave") from error
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(part, str) for part in key)):
        raise CursorInvalidError("the cursor is not one this search gave")
    return key[0], key[1], key[2]


async def search_patients(
    session: AsyncSession,
    query: PatientQuery,
    *,
    phone_region: str,
    limit: int,
    cursor: str | None = None,
) -> PatientPage:
    """The persons with a record matching every part of `query`, in name order."""
    merged_away = exists().where(PatientLink.record_id == Patient.id, PatientLink.person_id != Patient.id)
    sort_key = _sort_key()
    statement = select(Patient, *sort_key).where(~merged_away)
    filters = _record_filters(query, phone_region)
    if filters:
        matching_persons = select(_person_of_record()).where(*filters)
        statement = statement.where(Patient.id.in_(matching_persons.scalar_subquery()))
    if cursor is not None:
        after = tuple_(*(literal(part) for part in decode_cursor(cursor)))
        statement = statement.where(tuple_(*sort_key) > after)
    rows = (await session.execute(statement.order_by(*sort_key).limit(limit + 1))).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1][1:]) if len(rows) > limit else None
    return PatientPage([row[0] for row in page], next_cursor)
