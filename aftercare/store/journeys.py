"""Published journey definitions, by key and version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Select, bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.versioned import VersionConflict, latest_versions, publish_version, read_version
from models.journey import JourneyDefinition
from models.tables import Journey

_PARSED: dict[tuple[str, int], tuple[dict[str, Any], JourneyDefinition]] = {}


def _definition(document: dict[str, Any]) -> JourneyDefinition:
    """Parse a stored definition once per process. A published key and version never change content in
    one database, but a process may meet another database (a restore, a test's fresh one) holding other
    content under the same key and version, so the cached parse is used only for an equal document."""
    identity = (str(document["key"]), int(document["version"]))
    cached = _PARSED.get(identity)
    if cached is not None and cached[0] == document:
        return cached[1]
    parsed = JourneyDefinition.model_validate(document)
    _PARSED[identity] = (document, parsed)
    return parsed


class JourneyVersionConflict(VersionConflict):
    """This key and version is already published with other content."""


async def publish_journey(
    session: AsyncSession, definition: JourneyDefinition
) -> Literal["created", "unchanged"]:
    """Store a version; publishing identical content again is a no-op, other content a conflict."""
    entry = definition.entry
    return await publish_version(
        session,
        Journey,
        definition.model_dump(mode="json", exclude_none=True),
        {
            "key": definition.key,
            "version": definition.version,
            "name": definition.name,
            "facility": definition.facility,
            "entry_fhir_resource": entry.fhir.resource if entry and entry.fhir else None,
            "entry_event_type": entry.event.type if entry and entry.event else None,
        },
        what="journey",
        conflict=JourneyVersionConflict,
    )


async def get_journey(
    session: AsyncSession, key: str, version: int | None = None
) -> JourneyDefinition | None:
    """One version, or the latest when `version` is None."""
    document = await read_version(session, Journey, key, version)
    return _definition(document) if document is not None else None


async def latest_journeys(session: AsyncSession) -> list[JourneyDefinition]:
    """The latest version of every journey, by key."""
    return [_definition(document) for document in await latest_versions(session, Journey)]


_LATEST_FHIR_ENTRIES = (
    select(Journey.key, Journey.definition, Journey.entry_fhir_resource)
    .distinct(Journey.key)
    .order_by(Journey.key, Journey.version.desc())
    .subquery()
)
# Built once: every FHIR notification runs it.
_ENTERED_BY_FHIR = select(_LATEST_FHIR_ENTRIES.c.definition).where(
    _LATEST_FHIR_ENTRIES.c.entry_fhir_resource.in_(bindparam("resource_types", expanding=True))
)


def entered_by_fhir_part(kind: str) -> Select[Any]:
    """`(kind, definition)` rows of the latest journey versions whose entry watches one of the FHIR
    resource types `:resource_types` (a list): a part of a statement that reads more."""
    return select(literal(kind).label("kind"), _LATEST_FHIR_ENTRIES.c.definition.label("definition")).where(
        _LATEST_FHIR_ENTRIES.c.entry_fhir_resource.in_(bindparam("resource_types", expanding=True))
    )


def journey_of(document: dict[str, Any]) -> JourneyDefinition:
    """A stored journey definition, parsed (once per process for an unchanged document)."""
    return _definition(document)


async def journeys_entered_by_fhir(
    session: AsyncSession, resource_types: Sequence[str]
) -> list[JourneyDefinition]:
    """Latest versions whose entry watches one of these FHIR resource types."""
    connection = await session.connection()
    rows = await connection.execute(_ENTERED_BY_FHIR, {"resource_types": list(resource_types)})
    return [_definition(row[0]) for row in rows]


async def journeys_entered_by_event(session: AsyncSession, event_type: str) -> list[JourneyDefinition]:
    """Latest versions whose entry is this event type."""
    latest = (
        select(Journey.key, Journey.definition, Journey.entry_event_type)
        .distinct(Journey.key)
        .order_by(Journey.key, Journey.version.desc())
        .subquery()
    )
    rows = await session.execute(select(latest.c.definition).where(latest.c.entry_event_type == event_type))
    return [_definition(row[0]) for row in rows]
