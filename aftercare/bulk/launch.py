"""Starting an export: the import row first (it holds the resolved `_since`), then its workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from aftercare.bulk.export import create_export
from aftercare.bulk.progress import set_status
from models.bulk import BulkExportInput
from models.workflow_names import BULK_EXPORT_WORKFLOW


@dataclass(frozen=True)
class LaunchedExport:
    """An export recorded and its workflow started."""

    import_id: str
    workflow_id: str
    since: datetime | None


def export_workflow_id(import_id: str) -> str:
    """The workflow id of an export: one workflow per import."""
    return f"bulk-export-{import_id}"


async def launch_export(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    task_queue: str,
    *,
    source_key: str,
    since: datetime | None = None,
    full: bool = False,
    types: list[str] | None = None,
    fire_triggers: bool = False,
) -> LaunchedExport:
    """Record the export and start `BulkExportWorkflow`; a workflow that cannot start fails the import."""
    async with sessions.begin() as session:
        row = await create_export(
            session, source_key=source_key, since=since, full=full, types=types, fire_triggers=fire_triggers
        )
        import_id = row.id
        resolved = datetime.fromisoformat(row.request["since"]) if row.request.get("since") else None
    workflow_id = export_workflow_id(import_id)
    try:
        await temporal.start_workflow(
            BULK_EXPORT_WORKFLOW,
            BulkExportInput(import_id=import_id),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Bulk Data export from FHIR source {source_key}",
        )
    except Exception as error:
        async with sessions.begin() as session:
            await set_status(
                session, import_id, "failed", f"the workflow did not start: {type(error).__name__}"
            )
        raise
    return LaunchedExport(import_id=import_id, workflow_id=workflow_id, since=resolved)
