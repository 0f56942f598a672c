"""`aftercare import` and `aftercare export`.

`import` runs in this process (no worker needed): files stream straight into the database named by
DATABASE_URL, and an interrupted import resumes with `--resume ID`. It needs Temporal only with
`--triggers`. `export` records the export and starts `BulkExportWorkflow` on the worker (`--wait` follows
it to the end); `GET /v1/fhir/imports/{id}` shows either kind's progress.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from aftercare.bulk.files import import_files
from aftercare.bulk.importer import TriggerPath
from aftercare.bulk.launch import launch_export
from aftercare.bulk.readers import UnreadableFileError
from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.fhir_sync.sources import SourceMissingError, source_plan
from aftercare.settings import Settings
from aftercare.temporal.client import connect_temporal
from models.bulk import BulkExportResult


def _print_counts(title: str, counts: dict[str, int]) -> None:
    if counts:
        print(f"{title}: " + ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))


async def run_import(
    settings: Settings,
    paths: list[Path],
    *,
    triggers: bool,
    resume: str | None,
    batch_size: int,
    validate: bool,
) -> int:
    """Import files in-process and print what they did; the exit status."""
    engine = create_engine(settings.database_url, pool_size=2)
    sessions = session_factory(engine)
    trigger_path = None
    if triggers:
        temporal = await connect_temporal(settings)
        trigger_path = TriggerPath(
            EnrollmentStarter(sessions, temporal, settings.temporal_task_queue), temporal
        )
    started = time.perf_counter()
    try:
        summary = await import_files(
            sessions,
            paths,
            phone_region=settings.phone_default_region,
            fire_triggers=triggers,
            triggers=trigger_path,
            resume=resume,
            batch_size=batch_size,
            validate=validate,
            on_batch=lambda line: print(f"  ... line {line}", file=sys.stderr, end="\r"),
        )
    except (UnreadableFileError, LookupError) as error:
        print(f"aftercare import: error: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    print(f"import {summary.import_id}: {len(summary.files)} file(s) in {seconds:.1f}s")
    _print_counts("new", dict(summary.new))
    _print_counts("unchanged", dict(summary.unchanged))
    print(f"resources: {summary.resources} ({summary.resources / seconds if seconds else 0:.0f}/s)")
    if summary.parked:
        print(f"parked lines: {summary.parked} (see GET /v1/fhir/imports/{summary.import_id})")
    if triggers:
        print(f"enrollments started: {summary.triggered}")
    for location, reason in summary.failed.items():
        print(f"failed: {location}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


async def run_export(
    settings: Settings,
    *,
    source: str,
    since: datetime | None,
    full: bool,
    types: list[str] | None,
    triggers: bool,
    wait: bool,
) -> int:
    """Start an export on the worker (and follow it with `wait`); the exit status."""
    engine = create_engine(settings.database_url, pool_size=2)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            try:
                await source_plan(session, settings, source)
            except SourceMissingError as error:
                print(f"aftercare export: error: {error}", file=sys.stderr)
                return 2
        temporal = await connect_temporal(settings)
        launched = await launch_export(
            sessions,
            temporal,
            settings.temporal_task_queue,
            source_key=source,
            since=since,
            full=full,
            types=types,
            fire_triggers=triggers,
        )
        since_text = launched.since.isoformat() if launched.since else "the beginning (full export)"
        print(f"export {launched.import_id} started (workflow {launched.workflow_id}), since {since_text}")
        if not wait:
            return 0
        handle = temporal.get_workflow_handle(launched.workflow_id, result_type=BulkExportResult)
        result = await handle.result()
        print(
            f"export {result.import_id} {result.status}: {result.files} file(s), "
            f"{result.resources_imported} new versions, {result.resources_parked} parked lines"
        )
        return 0 if result.status == "completed" else 1
    finally:
        await engine.dispose()
