"""The import pipeline for one file: read lines, park the bad ones, write batches, and commit each batch
with the file's line mark so that a run that stops (crash, cancelled activity) resumes after the last
committed line without writing anything twice.

With `fire_triggers` new versions go to the trigger path as the FHIR import endpoint sends them: the
enrollments are allocated in the batch's transaction and started after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from aftercare.bulk.lines import Parked, read_item
from aftercare.bulk.progress import (
    PARKED_KEPT,
    ImportConflictError,
    lock_file,
    record_batch,
    set_file_status,
)
from aftercare.bulk.readers import skip
from aftercare.bulk.writer import BatchWritten, Item, write_batch
from aftercare.enrollment.fhir_events import deliver_fhir_events, fhir_segment_events
from aftercare.enrollment.fhir_triggers import launch_planned, plan_fhir_enrollments
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.metrics import FHIR_RESOURCES
from aftercare.segments.on_events import refresh_on_events
from models.tables import BulkImportFile

DEFAULT_BATCH = 500
_YIELD_EVERY = 32
# Called after each committed batch with the file's line mark (heartbeats, progress output).
BatchHook = Callable[[int], Awaitable[None] | None]


@dataclass(frozen=True)
class TriggerPath:
    """What an import that fires journeys needs: the enrollment starter and the Temporal client."""

    starter: EnrollmentStarter
    temporal: Client


@dataclass(frozen=True)
class ImportOptions:
    """How to import: the source label stored with each version, the phone region for patient profiles,
    whether new versions fire journeys, the batch size, and whether to validate against the FHIR models."""

    source: str
    phone_region: str
    fire_triggers: bool = False
    batch_size: int = DEFAULT_BATCH
    validate: bool = False


@dataclass
class FileOutcome:
    """What importing one file did in this run (the totals over runs are on the file's row)."""

    location: str
    lines_done: int = 0
    new: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    parked: int = 0
    triggered: int = 0
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        """Resources written in this run (new versions and versions already stored)."""
        return sum(self.new.values()) + sum(self.unchanged.values())


class FileImporter:
    """Imports files of one import into the store, batch by batch."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        options: ImportOptions,
        triggers: TriggerPath | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        if options.fire_triggers and triggers is None:
            raise ValueError("an import that fires journeys needs the trigger path")
        self._sessions = sessions
        self._options = options
        self._triggers = triggers
        self._on_batch = on_batch

    async def run(
        self, import_id: str, location: str, items: AsyncIterator[str | dict[str, Any]]
    ) -> FileOutcome:
        """Import the file's items (all of them: lines already committed are skipped here)."""
        started = time.perf_counter()
        async with self._sessions() as session:
            row = await session.get(BulkImportFile, (import_id, location))
            if row is None:
                raise LookupError(f"import {import_id} has no file {location}")
            done, status = row.lines_done, row.status
        outcome = FileOutcome(location, lines_done=done)
        if status == "done":
            return outcome
        batch: list[Item] = []
        parked: list[dict[str, Any]] = []
        parked_count = 0
        line = done
        # One batch is written while the next is read: the database and the parsing overlap. Commits
        # stay in order (each waits for the one before), so the line mark only ever moves forward.
        writing: asyncio.Task[None] | None = None
        try:
            async for raw in skip(items, done):
                line += 1
                if line % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the batch being written talk to the database
                read = read_item(raw, validate=self._options.validate)
                if isinstance(read, Parked):
                    parked_count += 1
                    if len(parked) < PARKED_KEPT:
                        parked.append({"line": line, "reason": read.reason})
                else:
                    batch.append(Item(read, raw if isinstance(raw, str) else None))
                if len(batch) + parked_count >= self._options.batch_size:
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(
                        self._commit(import_id, location, outcome, line, batch, parked, parked_count)
                    )
                    batch, parked, parked_count = [], [], 0
            if writing is not None:
                await writing
                writing = None
            if line > outcome.lines_done:
                await self._commit(import_id, location, outcome, line, batch, parked, parked_count)
        finally:
            if writing is not None:  # stopped by an error: the batch in flight commits whole or not at all
                if not writing.done():
                    writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing
        async with self._sessions.begin() as session:
            await set_file_status(session, import_id, location, "done")
        outcome.seconds = time.perf_counter() - started
        return outcome

    async def _commit(
        self,
        import_id: str,
        location: str,
        outcome: FileOutcome,
        line: int,
        batch: list[Item],
        parked: list[dict[str, Any]],
        parked_count: int,
    ) -> None:
        options = self._options
        async with self._sessions.begin() as session:
            row = await lock_file(session, import_id, location)
            if row.lines_done != outcome.lines_done:
                raise ImportConflictError(
                    f"{location} is at line {row.lines_done}, not {outcome.lines_done}: "
                    "another run is importing it"
                )
            written = (
                await write_batch(
                    session,
                    batch,
                    source=options.source,
                    phone_region=options.phone_region,
                    fire_triggers=options.fire_triggers,
                )
                if batch
                else BatchWritten()
            )
            planned = (
                await plan_fhir_enrollments(session, self._triggers.starter, written.pending_triggers)
                if self._triggers is not None and options.fire_triggers
                else []
            )
            await record_batch(
                session,
                row,
                lines_done=line,
                new=sum(written.new.values()),
                parked=parked,
                parked_count=parked_count,
            )
        if self._triggers is not None and options.fire_triggers and written.pending_triggers:
            outcome.triggered += await launch_planned(self._triggers.starter, planned)
            await deliver_fhir_events(self._sessions, self._triggers.temporal, written.pending_triggers)
            await refresh_on_events(
                self._sessions, self._triggers.starter, fhir_segment_events(written.pending_triggers)
            )
        label = options.source.split(":")[0]
        for kind, counts in (("new", written.new), ("unchanged", written.unchanged)):
            for resource_type, count in counts.items():
                FHIR_RESOURCES.labels(label, resource_type, kind).inc(count)
        outcome.lines_done = line
        outcome.new.update(written.new)
        outcome.unchanged.update(written.unchanged)
        outcome.parked += parked_count
        if self._on_batch is not None:
            result = self._on_batch(line)
            if result is not None:
                await result
