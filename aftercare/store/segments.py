"""Published segment definitions, by key and version."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, String, bindparam, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.versioned import VersionConflict, latest_versions, publish_version, read_version
from models.segment import SegmentDefinition, referenced_segments
from models.segment_tables import Segment, SegmentRefresh


class SegmentVersionConflict(VersionConflict):
    """This key and version is already published with other content."""


def _definition(document: dict[str, Any]) -> SegmentDefinition:
    return SegmentDefinition.model_validate(document)


async def publish_segment(
    session: AsyncSession, definition: SegmentDefinition
) -> Literal["created", "unchanged"]:
    """Store a version; identical content again is a no-op, other content a conflict."""
    return await publish_version(
        session,
        Segment,
        definition.document(),
        {
            "key": definition.key,
            "version": definition.version,
            "name": definition.name,
            "facility": definition.facility,
            "refresh_on": list(definition.refresh_on),
        },
        what="segment",
        conflict=SegmentVersionConflict,
    )


async def get_segment(
    session: AsyncSession, key: str, version: int | None = None
) -> SegmentDefinition | None:
    """One version, or the latest when `version` is None."""
    document = await read_version(session, Segment, key, version)
    return _definition(document) if document is not None else None


async def latest_segments(session: AsyncSession) -> list[SegmentDefinition]:
    """The latest version of every segment, by key."""
    return [_definition(document) for document in await latest_versions(session, Segment)]


async def referenced_definitions(
    session: AsyncSession, definition: SegmentDefinition
) -> dict[str, SegmentDefinition]:
    """The latest versions of the segments a definition refers to, directly or through others
    (a key that does not exist is simply absent; the compiler reports it)."""
    found: dict[str, SegmentDefinition] = {}
    pending = set(referenced_segments(definition.criteria))
    while pending:
        key = pending.pop()
        if key in found:
            continue
        referenced = await get_segment(session, key)
        if referenced is None:
            continue
        found[key] = referenced
        pending |= referenced_segments(referenced.criteria) - found.keys()
    return found


_LATEST_SEGMENTS = (
    select(Segment.definition, Segment.refresh_on)
    .distinct(Segment.key)
    .order_by(Segment.key, Segment.version.desc())
    .subquery()
)
# Built once: a statement built per call costs its construction and cache key on every notification.
_REFRESHED_BY = select(_LATEST_SEGMENTS.c.definition).where(
    _LATEST_SEGMENTS.c.refresh_on.overlap(bindparam("event_types", type_=ARRAY(String)))
)


def refreshed_by_part(kind: str) -> Select[Any]:
    """`(kind, definition)` rows of the latest segment versions that one of the event types
    `:event_types` (a list) refreshes: a part of a statement that reads more."""
    return select(literal(kind).label("kind"), _LATEST_SEGMENTS.c.definition.label("definition")).where(
        _LATEST_SEGMENTS.c.refresh_on.overlap(bindparam("event_types", type_=ARRAY(String)))
    )


def segment_of(document: dict[str, Any]) -> SegmentDefinition:
    """A stored segment definition, parsed."""
    return _definition(document)


async def segments_refreshed_by(
    session: AsyncSession, event_types: Collection[str]
) -> list[SegmentDefinition]:
    """The latest versions of the segments that one of these event types refreshes."""
    if not event_types:
        return []
    rows = await (await session.connection()).scalars(_REFRESHED_BY, {"event_types": list(event_types)})
    return [_definition(document) for document in rows]


async def last_refreshes(session: AsyncSession) -> dict[str, datetime]:
    """When each segment was last refreshed by the schedule."""
    rows = await session.execute(select(SegmentRefresh.segment_key, SegmentRefresh.refreshed_at))
    return {key: at for key, at in rows}


async def record_refresh(
    session: AsyncSession,
    definition: SegmentDefinition,
    at: datetime,
    *,
    members: int,
    entered: int,
    exited: int,
) -> None:
    """Note a scheduled refresh of the segment."""
    values = {
        "segment_version": definition.version,
        "refreshed_at": at,
        "members": members,
        "entered": entered,
        "exited": exited,
    }
    statement = insert(SegmentRefresh).values(segment_key=definition.key, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[SegmentRefresh.segment_key], set_=values)
    )
