"""A FHIR Bulk Data export, durably: kick-off, status polls with the waits the server asks for
(`Retry-After`) as workflow timers, then one import activity per output file. A file's activity commits
its progress with every batch and heartbeats it, so a retried attempt carries on where the last stopped."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.bulk import BulkActivities
    from activities.options import FHIR_READ
    from models.bulk import (
        BulkExportInput,
        BulkExportPolled,
        BulkExportResult,
        BulkFileInput,
        BulkFileResult,
        BulkFinishInput,
    )
    from models.workflow_names import BULK_EXPORT_WORKFLOW

# Waits between status polls: the server's Retry-After, kept within these bounds.
DEFAULT_POLL = timedelta(seconds=10)
MIN_POLL = timedelta(seconds=1)
MAX_POLL = timedelta(hours=1)
# An export the server has not finished by then is given up (closed as failed).
MAX_EXPORT_WAIT = timedelta(hours=24)
FILE_TIMEOUT = timedelta(hours=6)
FILE_HEARTBEAT = timedelta(minutes=2)
FILE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=20,
    non_retryable_error_types=["FhirSourceMissing", "FhirQueryRefused", "InvalidInput"],
)


def poll_wait(polled: BulkExportPolled) -> timedelta:
    """How long to wait before the next status poll."""
    if polled.retry_after_seconds is None:
        return DEFAULT_POLL
    return min(MAX_POLL, max(MIN_POLL, timedelta(seconds=polled.retry_after_seconds)))


@workflow.defn(name=BULK_EXPORT_WORKFLOW)
class BulkExportWorkflow:
    """One Bulk Data export from a source into the store."""

    @workflow.run
    async def run(self, request: BulkExportInput) -> BulkExportResult:
        """Export, wait, import every output file; a failure closes the import as failed with why."""
        error: str | None = None
        try:
            error = await self._export(request)
        except ActivityError as failure:
            error = str(failure.cause or failure)
        result: BulkExportResult = await workflow.execute_activity_method(
            BulkActivities.finish_bulk_export,
            BulkFinishInput(import_id=request.import_id, error=error),
            **FHIR_READ.options(),
        )
        return result

    async def _export(self, request: BulkExportInput) -> str | None:
        """Run the export; returns why it was given up, or None."""
        workflow.set_current_details(f"Starting export {request.import_id}")
        started = workflow.now()
        await workflow.execute_activity_method(
            BulkActivities.start_bulk_export, request, summary="Bulk Data kick-off", **FHIR_READ.options()
        )
        polls = 0
        while True:
            polled: BulkExportPolled = await workflow.execute_activity_method(
                BulkActivities.poll_bulk_export, request, summary="Export status", **FHIR_READ.options()
            )
            if polled.complete:
                break
            if workflow.now() - started > MAX_EXPORT_WAIT:
                return f"the server did not finish the export within {MAX_EXPORT_WAIT}"
            polls += 1
            wait = poll_wait(polled)
            workflow.set_current_details(
                f"Export in progress ({polled.progress or 'no progress given'}); poll {polls}, next in {wait}"
            )
            await workflow.sleep(wait, summary="Retry-After")
        for number, location in enumerate(polled.files, start=1):
            workflow.set_current_details(f"Importing file {number} of {len(polled.files)}")
            done: BulkFileResult = await workflow.execute_activity_method(
                BulkActivities.import_bulk_file,
                BulkFileInput(import_id=request.import_id, location=location),
                summary=f"Importing file {number}",
                start_to_close_timeout=FILE_TIMEOUT,
                heartbeat_timeout=FILE_HEARTBEAT,
                retry_policy=FILE_RETRY,
            )
            workflow.logger.info("bulk file imported", extra={"file": number, "lines": done.lines_done})
        workflow.set_current_details(f"Imported {len(polled.files)} files")
        return None
