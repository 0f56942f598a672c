"""The bulk import rows: an import, its files, and the progress each committed batch records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import BulkImport, BulkImportFile

# How many parked lines (line number and reason) a file keeps; the count is always exact.
PARKED_KEPT = 20


class ImportConflictError(RuntimeError):
    """Another run of the same file committed lines this run was about to: this run stops."""


def new_import_id() -> str:
    """A new import id."""
    return f"imp-{uuid.uuid4().hex[:20]}"


async def create_import(
    session: AsyncSession,
    *,
    kind: str,
    request: dict[str, Any],
    fire_triggers: bool,
    source_key: str | None = None,
    status: str = "pending",
) -> BulkImport:
    """Record a new import."""
    row = BulkImport(
        id=new_import_id(),
        kind=kind,
        source_key=source_key,
        status=status,
        request=request,
        fire_triggers=fire_triggers,
        resources_imported=0,
        resources_parked=0,
    )
    session.add(row)
    await session.flush()
    return row


async def add_files(session: AsyncSession, import_id: str, files: Sequence[tuple[str, str | None]]) -> None:
    """Record an import's files as (location, resource type); files already recorded keep their progress."""
    if not files:
        return
    await session.execute(
        insert(BulkImportFile)
        .values(
            [
                {"import_id": import_id, "location": location, "resource_type": resource_type}
                for location, resource_type in files
            ]
        )
        .on_conflict_do_nothing()
    )


async def files_of(session: AsyncSession, import_id: str) -> list[BulkImportFile]:
    """An import's files in the order they were recorded (by location)."""
    rows = await session.scalars(
        select(BulkImportFile).where(BulkImportFile.import_id == import_id).order_by(BulkImportFile.location)
    )
    return list(rows)


async def lock_file(session: AsyncSession, import_id: str, location: str) -> BulkImportFile:
    """The file's row, locked for the rest of the transaction."""
    row = await session.get(BulkImportFile, (import_id, location), with_for_update=True)
    if row is None:
        raise LookupError(f"import {import_id} has no file {location}")
    return row


async def record_batch(
    session: AsyncSession,
    row: BulkImportFile,
    *,
    lines_done: int,
    new: int,
    parked: list[dict[str, Any]],
    parked_count: int,
) -> None:
    """A committed batch: the file's line mark and counts, and the import's totals."""
    row.lines_done = lines_done
    row.status = "importing"
    row.resources_new += new
    if parked_count:
        kept = list(row.parked or [])
        row.parked = [*kept, *parked[: max(0, PARKED_KEPT - len(kept))]]
        row.lines_parked += parked_count
    await session.execute(
        update(BulkImport)
        .where(BulkImport.id == row.import_id)
        .values(
            resources_imported=BulkImport.resources_imported + new,
            resources_parked=BulkImport.resources_parked + parked_count,
        )
    )


async def set_file_status(
    session: AsyncSession, import_id: str, location: str, status: str, error: str | None = None
) -> None:
    """A file finished (`done`) or could not be read (`failed`, with why)."""
    await session.execute(
        update(BulkImportFile)
        .where(BulkImportFile.import_id == import_id, BulkImportFile.location == location)
        .values(status=status, error=error)
    )


async def set_status(session: AsyncSession, import_id: str, status: str, error: str | None = None) -> None:
    """Move an import on; `completed` and `failed` are final and stamp `finished_at`."""
    values: dict[str, Any] = {"status": status}
    if error is not None:
        values["error"] = error
    if status in ("completed", "failed"):
        values["finished_at"] = func.now()
    await session.execute(update(BulkImport).where(BulkImport.id == import_id).values(**values))


async def recent_imports(
    session: AsyncSession, limit: int = 50, kind: str | None = None
) -> Sequence[BulkImport]:
    """Imports (exports from sources and file imports), newest first."""
    query = select(BulkImport).order_by(BulkImport.created_at.desc(), BulkImport.id).limit(limit)
    if kind:
        query = query.where(BulkImport.kind == kind)
    return (await session.scalars(query)).all()
