"""Publishing a versioned definition (journeys, segments): a key and version are immutable once stored."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.store.hashing import content_hash


class VersionConflict(Exception):
    """This key and version is already published with other content."""


async def publish_version(
    session: AsyncSession,
    table: Any,
    document: dict[str, Any],
    columns: dict[str, Any],
    *,
    what: str,
    conflict: type[VersionConflict] = VersionConflict,
) -> Literal["created", "unchanged"]:
    """Insert `document` (with `columns`, which include key and version) into the table; publishing
    identical content again is a no-op, other content raises `conflict`."""
    digest = content_hash(document)
    inserted = await session.scalar(
        insert(table)
        .values(**columns, definition=document, content_hash=digest)
        .on_conflict_do_nothing()
        .returning(table.key)
    )
    if inserted is not None:
        return "created"
    stored = await session.scalar(
        select(table.content_hash).where(table.key == columns["key"], table.version == columns["version"])
    )
    if stored != digest:
        raise conflict(
            f"{what} {columns['key']!r} version {columns['version']} is already published with other "
            "content; publish it as a new version"
        )
    return "unchanged"


async def read_version(
    session: AsyncSession, table: Any, key: str, version: int | None = None
) -> dict[str, Any] | None:
    """One stored definition document, or the latest version's when `version` is None."""
    query = select(table.definition).where(table.key == key)
    query = query.where(table.version == version) if version else query.order_by(table.version.desc())
    document: dict[str, Any] | None = await session.scalar(query.limit(1))
    return document


async def latest_versions(session: AsyncSession, table: Any) -> list[dict[str, Any]]:
    """The latest version's document of every key, by key."""
    rows = await session.scalars(
        select(table.definition).distinct(table.key).order_by(table.key, table.version.desc())
    )
    return list(rows)
