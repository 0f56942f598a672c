"""FHIR Bulk Data `$export` from a configured source, in steps a workflow drives: kick-off, one status
poll at a time (the workflow waits as long as `Retry-After` asks, durably), then each output file
streamed into the store, resumable from its last committed line.

Incremental exports: without `since` (and unless `full`), an export asks for what changed since the
`transactionTime` of the source's last completed export (`_since`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.bulk.importer import (
    DEFAULT_BATCH,
    BatchHook,
    FileImporter,
    FileOutcome,
    ImportOptions,
    TriggerPath,
)
from aftercare.bulk.progress import add_files, create_import, files_of, set_status
from aftercare.fhir.instants import parse_instant
from aftercare.fhir_sync.sources import open_client
from aftercare.settings import Settings
from models.tables import BulkImport

EXPORT_KIND = "export"
SYSTEM_EXPORT = "$export"


@dataclass(frozen=True)
class ExportPoll:
    """One status poll: complete (with the output files to import), or the wait the server asked for."""

    complete: bool
    retry_after: float | None = None
    progress: str | None = None
    files: list[str] = field(default_factory=list)


def source_label(source_key: str) -> str:
    """The `source` stored with the versions an export brings."""
    return f"export:{source_key}"[:32]


async def last_transaction_time(session: AsyncSession, source_key: str) -> datetime | None:
    """The `transactionTime` of the source's last completed export: the next export's `_since`."""
    value: datetime | None = await session.scalar(
        select(BulkImport.transaction_time)
        .where(
            BulkImport.kind == EXPORT_KIND,
            BulkImport.source_key == source_key,
            BulkImport.status == "completed",
            BulkImport.transaction_time.is_not(None),
        )
        .order_by(BulkImport.finished_at.desc())
        .limit(1)
    )
    return value


async def create_export(
    session: AsyncSession,
    *,
    source_key: str,
    since: datetime | None = None,
    full: bool = False,
    types: list[str] | None = None,
    fire_triggers: bool = False,
) -> BulkImport:
    """Record an export to run; `since` defaults to the last completed export's transaction time."""
    if since is None and not full:
        since = await last_transaction_time(session, source_key)
    request = {
        "source": source_key,
        "since": since.isoformat() if since else None,
        "types": types or None,
        "full": full,
        "path": SYSTEM_EXPORT,
    }
    return await create_import(
        session, kind=EXPORT_KIND, request=request, fire_triggers=fire_triggers, source_key=source_key
    )


class BulkExports:
    """The steps of an export, each safe to repeat (a retried activity)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        triggers: TriggerPath | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._triggers = triggers
        self._batch_size = batch_size

    async def _load(self, session: AsyncSession, import_id: str) -> BulkImport:
        row = await session.get(BulkImport, import_id)
        if row is None or row.kind != EXPORT_KIND:
            raise LookupError(f"no export {import_id}")
        return row

    async def kick_off(self, import_id: str) -> str:
        """Start the export on the server (once: a repeated call returns the recorded status URL)."""
        async with self._sessions() as session:
            row = await self._load(session, import_id)
            if row.status_url:
                return row.status_url
            request = dict(row.request)
            client = await open_client(session, self._settings, row.source_key)
        async with client:
            status_url = await client.start_export(
                request.get("path") or SYSTEM_EXPORT, types=request.get("types"), since=request.get("since")
            )
        async with self._sessions.begin() as session:
            row = await self._load(session, import_id)
            row.status_url = status_url
            row.status = "exporting"
        return status_url

    async def poll(self, import_id: str) -> ExportPoll:
        """Ask once how the export is going; when complete, record its manifest and output files."""
        async with self._sessions() as session:
            row = await self._load(session, import_id)
            if row.status_url is None:
                raise LookupError(f"export {import_id} was not started")
            status_url = row.status_url
            client = await open_client(session, self._settings, row.source_key)
        async with client:
            status = await client.export_status(status_url)
        if not status.complete or status.manifest is None:
            return ExportPoll(complete=False, retry_after=status.retry_after, progress=status.progress)
        manifest = status.manifest
        outputs = [
            (str(output["url"]), str(output.get("type") or "") or None)
            for output in manifest.get("output") or []
            if isinstance(output, dict) and output.get("url")
        ]
        async with self._sessions.begin() as session:
            row = await self._load(session, import_id)
            row.transaction_time = parse_instant(manifest.get("transactionTime"))
            row.request = {
                **row.request,
                "requires_access_token": bool(manifest.get("requiresAccessToken")),
                "error_files": len(manifest.get("error") or []),
            }
            row.status = "importing"
            await add_files(session, import_id, outputs)
        return ExportPoll(complete=True, files=[location for location, _ in outputs])

    async def import_file(
        self, import_id: str, location: str, on_batch: BatchHook | None = None
    ) -> FileOutcome:
        """Download one output file and import it from its last committed line."""
        async with self._sessions() as session:
            row = await self._load(session, import_id)
            with_auth = bool(row.request.get("requires_access_token"))
            fire_triggers, source_key = row.fire_triggers, row.source_key or ""
            client = await open_client(session, self._settings, row.source_key)
        importer = FileImporter(
            self._sessions,
            ImportOptions(
                source=source_label(source_key),
                phone_region=self._settings.phone_default_region,
                fire_triggers=fire_triggers,
                batch_size=self._batch_size,
            ),
            self._triggers,
            on_batch,
        )
        async with client:
            return await importer.run(import_id, location, client.stream_lines(location, with_auth=with_auth))

    async def finish(self, import_id: str, error: str | None = None) -> tuple[BulkImport, int]:
        """Mark the export completed (or failed, with why); a completed one is the next `_since`.
        Returns the import and its number of files."""
        async with self._sessions.begin() as session:
            await set_status(session, import_id, "failed" if error else "completed", error)
        async with self._sessions() as session:
            return await self._load(session, import_id), len(await files_of(session, import_id))
