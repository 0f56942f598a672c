"""Bulk imports: start a FHIR Bulk Data export from a source (run by `BulkExportWorkflow`), and follow
imports (exports and `aftercare import` file imports) with their per-file progress and parked lines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from aftercare.bulk.launch import launch_export
from aftercare.bulk.progress import files_of, recent_imports
from aftercare.fhir_sync.sources import SourceMissingError, source_plan
from api.deps import ServicesDep, SessionDep
from models.bulk import ExportRequest, ExportStarted, ImportFileView, ImportList, ImportView, ParkedLine
from models.tables import BulkImport, BulkImportFile

router = APIRouter(prefix="/v1/fhir", tags=["fhir"])


@router.post("/exports", response_model=ExportStarted, status_code=status.HTTP_202_ACCEPTED)
async def start_export(request: ExportRequest, services: ServicesDep, session: SessionDep) -> ExportStarted:
    """Export from the source (`$export`) into the store. Without `since`, only what changed since the
    source's last completed export (unless `full`). New versions fire journeys only with `fire_triggers`."""
    try:
        await source_plan(session, services.settings, request.source)
    except SourceMissingError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    await session.close()
    launched = await launch_export(
        services.sessions,
        services.temporal,
        services.settings.temporal_task_queue,
        source_key=request.source,
        since=request.since,
        full=request.full,
        types=request.types,
        fire_triggers=request.fire_triggers,
    )
    return ExportStarted(
        id=launched.import_id, status="pending", workflow_id=launched.workflow_id, since=launched.since
    )


@router.get("/imports", response_model=ImportList)
async def list_imports(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    kind: Annotated[str | None, Query(description="`export` or `files`")] = None,
) -> ImportList:
    """Imports, newest first, without their files."""
    return ImportList(imports=[_view(row) for row in await recent_imports(session, limit, kind)])


@router.get("/imports/{import_id}", response_model=ImportView)
async def read_import(import_id: str, session: SessionDep) -> ImportView:
    """One import: status, counts, errors, and each file's progress and first parked lines."""
    row = await session.get(BulkImport, import_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no import {import_id}")
    return _view(row, await files_of(session, import_id))


def _view(row: BulkImport, files: list[BulkImportFile] | None = None) -> ImportView:
    return ImportView(
        id=row.id,
        kind=row.kind,
        source=row.source_key,
        status=row.status,
        request=row.request,
        fire_triggers=row.fire_triggers,
        transaction_time=row.transaction_time,
        resources_imported=row.resources_imported,
        resources_parked=row.resources_parked,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        files=None
        if files is None
        else [
            ImportFileView(
                location=file.location,
                resource_type=file.resource_type,
                status=file.status,
                lines_done=file.lines_done,
                resources_new=file.resources_new,
                lines_parked=file.lines_parked,
                parked=[ParkedLine(**item) for item in file.parked or []],
                error=file.error,
            )
            for file in files
        ],
    )
