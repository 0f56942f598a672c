"""Activities of a Bulk Data export: kick-off, one status poll, one output file's import (heartbeating
its line mark, so a retried attempt is seen to resume), and closing the import."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from aftercare.bulk.export import BulkExports
from aftercare.bulk.importer import TriggerPath
from aftercare.bulk.progress import ImportConflictError
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir_client.errors import FhirAuthError, FhirClientError, FhirUnavailable
from aftercare.fhir_sync.sources import SourceMissingError
from aftercare.settings import Settings
from models.bulk import (
    BulkExportInput,
    BulkExportPolled,
    BulkExportResult,
    BulkFileInput,
    BulkFileResult,
    BulkFinishInput,
)

log = logging.getLogger(__name__)


class BulkActivities:
    """Runs the steps of `BulkExportWorkflow` against the store and the source's FHIR server."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        starter: EnrollmentStarter,
        temporal: Client,
    ) -> None:
        self._exports = BulkExports(sessions, settings, TriggerPath(starter, temporal))

    @activity.defn(name="start_bulk_export")
    async def start_bulk_export(self, request: BulkExportInput) -> None:
        """Kick the export off on the server (once; a retry finds the recorded status URL)."""
        try:
            await self._exports.kick_off(request.import_id)
        except Exception as error:
            raise _activity_error(error) from error

    @activity.defn(name="poll_bulk_export")
    async def poll_bulk_export(self, request: BulkExportInput) -> BulkExportPolled:
        """Poll the export's status once; the workflow does the waiting."""
        try:
            polled = await self._exports.poll(request.import_id)
        except Exception as error:
            raise _activity_error(error) from error
        return BulkExportPolled(
            complete=polled.complete,
            retry_after_seconds=polled.retry_after,
            progress=polled.progress,
            files=polled.files,
        )

    @activity.defn(name="import_bulk_file")
    async def import_bulk_file(self, request: BulkFileInput) -> BulkFileResult:
        """Stream one output file into the store from its last committed line, heartbeating the mark."""
        details = activity.info().heartbeat_details
        if details:
            log.info("resuming a bulk file", extra={"import_id": request.import_id, "from_line": details[0]})
        activity.heartbeat(int(details[0]) if details else 0)
        try:
            outcome = await self._exports.import_file(
                request.import_id, request.location, on_batch=lambda line: activity.heartbeat(line)
            )
        except Exception as error:
            raise _activity_error(error) from error
        log.info(
            "bulk file imported",
            extra={"import_id": request.import_id, "lines": outcome.lines_done, "parked": outcome.parked},
        )
        return BulkFileResult(
            lines_done=outcome.lines_done,
            new=sum(outcome.new.values()),
            unchanged=sum(outcome.unchanged.values()),
            parked=outcome.parked,
            triggered=outcome.triggered,
        )

    @activity.defn(name="finish_bulk_export")
    async def finish_bulk_export(self, request: BulkFinishInput) -> BulkExportResult:
        """Close the import: completed (the next export's `_since`), or failed with why."""
        row, files = await self._exports.finish(request.import_id, request.error)
        return BulkExportResult(
            import_id=row.id,
            status=row.status,
            files=files,
            resources_imported=row.resources_imported,
            resources_parked=row.resources_parked,
            transaction_time=row.transaction_time,
        )


def _activity_error(error: Exception) -> Exception:
    """Retry what may pass (the server busy, another attempt still on the file); not what cannot."""
    if isinstance(error, ApplicationError):
        return error
    if isinstance(error, SourceMissingError):
        return ApplicationError(str(error), type="FhirSourceMissing", non_retryable=True)
    if isinstance(error, ImportConflictError):
        return ApplicationError(str(error), type="BulkImportConflict")
    if isinstance(error, FhirUnavailable):
        return ApplicationError(f"the FHIR server is unavailable: {error}", type="FhirUnavailable")
    if isinstance(error, FhirAuthError):
        return ApplicationError(f"the FHIR server refused our credentials: {error}", type="FhirAuth")
    if isinstance(error, FhirClientError):
        return ApplicationError(
            f"the FHIR server refused the request: {error}", type="FhirQueryRefused", non_retryable=True
        )
    if isinstance(error, LookupError):
        return ApplicationError(str(error), type="InvalidInput", non_retryable=True)
    return error
