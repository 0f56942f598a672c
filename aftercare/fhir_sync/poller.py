"""Polling a FHIR source that cannot notify us: each watched resource type is searched by
`_lastUpdated` since a durable high-water mark, page by page, into the same trigger path.

Delivery is at least once: a run re-reads a short overlap before the mark (a server may commit a
resource stamped slightly earlier than one it already returned), and stored versions are deduplicated,
so nothing is missed and nothing is doubled across restarts. The mark only moves after the pages
up to it were stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.fhir.instants import last_updated_of
from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_sync.receive import Ingestion
from models.tables import SyncCursor

OVERLAP = timedelta(seconds=30)
PAGE_SIZE = 200
# Where a type's first poll starts (later ones start from the mark). A full history is a bulk export.
FIRST_POLL_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class TypePolled:
    """One resource type's run: how many resources came back, were new, and where the mark is."""

    resource_type: str
    seen: int
    stored: int
    triggered: int
    high_water: datetime | None


async def poll_type(
    client: FhirClient,
    ingestion: Ingestion,
    source_key: str,
    resource_type: str,
    *,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> TypePolled:
    """Search one type since its mark and receive every page; then move the mark."""
    async with ingestion.sessions() as session:
        cursor = await session.get(SyncCursor, (source_key, resource_type))
    started = now or datetime.now(UTC)
    mark = cursor.high_water if cursor is not None and cursor.high_water else None
    since = (mark - OVERLAP) if mark else started - FIRST_POLL_LOOKBACK
    params: list[tuple[str, str]] = [
        ("_lastUpdated", f"ge{since.isoformat()}"),
        ("_sort", "_lastUpdated"),
        ("_count", str(page_size)),
    ]
    seen = stored = triggered = pages = 0
    newest = mark
    async for page in client.search_pages(resource_type, params):
        resources = [
            entry["resource"]
            for entry in page.get("entry") or []
            if isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == resource_type
            and (entry.get("search") or {}).get("mode", "match") == "match"
        ]
        received = await ingestion.receive(resources, source=f"poll:{source_key}")
        seen += len(resources)
        stored += received.stored
        triggered += received.triggered
        newest = _latest(newest, resources)
        pages += 1
        if on_page is not None:
            on_page(pages)
    async with ingestion.sessions.begin() as session:
        await _save_cursor(session, source_key, resource_type, newest, seen, started)
    return TypePolled(resource_type, seen, stored, triggered, newest)


async def record_poll_error(session: AsyncSession, source_key: str, resource_type: str, error: str) -> None:
    """Keep the last error of a type's poll for operators (the mark does not move)."""
    statement = insert(SyncCursor).values(
        source_key=source_key, resource_type=resource_type, last_error=error, last_run_at=datetime.now(UTC)
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source_key", "resource_type"],
            set_={"last_error": statement.excluded.last_error, "last_run_at": statement.excluded.last_run_at},
        )
    )


async def _save_cursor(
    session: AsyncSession,
    source_key: str,
    resource_type: str,
    high_water: datetime | None,
    seen: int,
    ran_at: datetime,
) -> None:
    statement = insert(SyncCursor).values(
        source_key=source_key,
        resource_type=resource_type,
        high_water=high_water,
        resources_seen=seen,
        last_run_at=ran_at,
        last_error=None,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source_key", "resource_type"],
            set_={
                "high_water": statement.excluded.high_water,
                "resources_seen": SyncCursor.resources_seen + statement.excluded.resources_seen,
                "last_run_at": statement.excluded.last_run_at,
                "last_error": None,
            },
        )
    )


def _latest(current: datetime | None, resources: list[dict[str, Any]]) -> datetime | None:
    for resource in resources:
        moment = last_updated_of(resource)
        if moment is not None and (current is None or moment > current):
            current = moment
    return current
