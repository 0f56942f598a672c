"""Published segment definitions, by key and version."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.versioned import VersionConflict, latest_versions, publish_version, read_version
from models.segment import SegmentDefinition, referenced_segments
from models.segment_tables import Segment


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
        {"key": definition.key, "version": definition.version, "name": definition.name},
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
