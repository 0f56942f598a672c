"""Importing NDJSON and Bundle files (`aftercare import`): one import row, one file row per file, each
file resumable from its last committed line (`resume` with the import's id)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aftercare.bulk.importer import (
    DEFAULT_BATCH,
    BatchHook,
    FileImporter,
    FileOutcome,
    ImportOptions,
    TriggerPath,
)
from aftercare.bulk.progress import add_files, create_import, set_file_status, set_status
from aftercare.bulk.readers import (
    UnreadableFileError,
    as_async,
    bundle_resources,
    expand_paths,
    file_kind,
    ndjson_lines,
)
from aftercare.fhir.resources import is_resource_type
from models.tables import BulkImport

FILES_SOURCE = "bulk-file"


@dataclass
class ImportSummary:
    """What an import run did, over its files."""

    import_id: str
    files: list[FileOutcome] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def new(self) -> Counter[str]:
        """New versions by type."""
        return sum((outcome.new for outcome in self.files), Counter())

    @property
    def unchanged(self) -> Counter[str]:
        """Versions already stored, by type."""
        return sum((outcome.unchanged for outcome in self.files), Counter())

    @property
    def parked(self) -> int:
        """Lines parked as unusable."""
        return sum(outcome.parked for outcome in self.files)

    @property
    def resources(self) -> int:
        """Resources written (new or already stored)."""
        return sum(outcome.resources for outcome in self.files)

    @property
    def triggered(self) -> int:
        """Enrollments started."""
        return sum(outcome.triggered for outcome in self.files)


def resource_type_from_name(path: Path) -> str | None:
    """`Condition.000.ndjson` holds Conditions (the Bulk Data naming); None when the name says nothing."""
    prefix = path.name.split(".")[0]
    return prefix if is_resource_type(prefix) else None


async def import_files(
    sessions: async_sessionmaker[AsyncSession],
    paths: Sequence[Path],
    *,
    phone_region: str,
    fire_triggers: bool = False,
    triggers: TriggerPath | None = None,
    resume: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    validate: bool = False,
    on_batch: BatchHook | None = None,
) -> ImportSummary:
    """Import files and directories of files (NDJSON streamed, Bundles read whole); with `resume`, carry
    on an earlier import of the same files from each file's last committed line."""
    files = expand_paths(paths) if paths else []
    async with sessions.begin() as session:
        if resume is None:
            row = await create_import(
                session,
                kind="files",
                request={"paths": [str(path) for path in files], "validate": validate},
                fire_triggers=fire_triggers,
                status="importing",
            )
            import_id = row.id
        else:
            existing = await session.get(BulkImport, resume)
            if existing is None or existing.kind != "files":
                raise LookupError(f"no file import {resume}")
            import_id, fire_triggers = existing.id, existing.fire_triggers
            files = files or [Path(path) for path in existing.request.get("paths", [])]
            await set_status(session, import_id, "importing")
        await add_files(session, import_id, [(str(path), resource_type_from_name(path)) for path in files])
    importer = FileImporter(
        sessions,
        ImportOptions(
            source=FILES_SOURCE,
            phone_region=phone_region,
            fire_triggers=fire_triggers,
            batch_size=batch_size,
            validate=validate,
        ),
        triggers,
        on_batch,
    )
    summary = ImportSummary(import_id)
    for path in files:
        location = str(path)
        try:
            if file_kind(path) == "bundle":
                items = as_async(bundle_resources(path))
            else:
                items = as_async(ndjson_lines(path))
            summary.files.append(await importer.run(import_id, location, items))
        except (UnreadableFileError, OSError) as error:
            summary.failed[location] = str(error)
            async with sessions.begin() as session:
                await set_file_status(session, import_id, location, "failed", str(error))
    async with sessions.begin() as session:
        await set_status(
            session,
            import_id,
            "completed",
            f"{len(summary.failed)} of {len(files)} files could not be read" if summary.failed else None,
        )
    return summary
