"""Bulk import contracts: the `BulkExport` workflow's and activities' inputs and results (frozen), and the
API's request and response bodies for exports and imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.base import TemporalModel

# --- Temporal ---------------------------------------------------------------------------------------


class BulkExportInput(TemporalModel):
    """Run the recorded export `import_id` (a `bulk_imports` row) to the end."""

    import_id: str


class BulkExportPolled(TemporalModel):
    """One status poll: complete with the output files, or the seconds the server asked us to wait."""

    complete: bool
    retry_after_seconds: float | None = None
    progress: str | None = None
    files: list[str] = []


class BulkFileInput(TemporalModel):
    """Import one output file of an export, from its last committed line."""

    import_id: str
    location: str


class BulkFileResult(TemporalModel):
    """What importing one file did in the attempt that finished it."""

    lines_done: int
    new: int
    unchanged: int
    parked: int
    triggered: int = 0


class BulkFinishInput(TemporalModel):
    """Close an export: completed, or failed with why."""

    import_id: str
    error: str | None = None


class BulkExportResult(TemporalModel):
    """A finished export."""

    import_id: str
    status: str
    files: int
    resources_imported: int
    resources_parked: int
    transaction_time: datetime | None = None


# --- API --------------------------------------------------------------------------------------------


class ExportRequest(BaseModel):
    """Start a Bulk Data export from a FHIR source. Without `since`, only what changed since the source's
    last completed export is asked for (`_since`), unless `full`."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="default", max_length=64)
    since: datetime | None = None
    full: bool = False
    types: list[str] | None = Field(default=None, description="resource types (`_type`); all when absent")
    fire_triggers: bool = Field(default=False, description="new versions fire journeys' FHIR entries")


class ExportStarted(BaseModel):
    """An export accepted: follow it at `GET /v1/fhir/imports/{id}`."""

    id: str
    status: str
    workflow_id: str
    since: datetime | None = None


class ParkedLine(BaseModel):
    """A line that could not be imported (the line number and why, never its content)."""

    line: int
    reason: str


class ImportFileView(BaseModel):
    """One file of an import and how far it has been read."""

    location: str
    resource_type: str | None
    status: str
    lines_done: int
    resources_new: int
    lines_parked: int
    parked: list[ParkedLine] = []
    error: str | None = None


class ImportView(BaseModel):
    """A bulk import: an export from a source, or files."""

    id: str
    kind: str
    source: str | None
    status: str
    request: dict[str, Any]
    fire_triggers: bool
    transaction_time: datetime | None
    resources_imported: int
    resources_parked: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    files: list[ImportFileView] | None = None


class ImportList(BaseModel):
    """Imports, newest first."""

    imports: list[ImportView]
