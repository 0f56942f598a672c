"""The export steps against the local FHIR test server: `_since` from the last completed export, and an
output file whose import stopped resuming from its last committed line on a fresh download."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.bulk.export import BulkExports, create_export, last_transaction_time
from aftercare.settings import Settings
from models.tables import BulkImportFile, FhirResourceVersion
from tests.conftest import SYNTHEA_BULK
from tests.fhir_server import running_fhir_server


class Crash(Exception):
    """The worker dying after a committed batch."""


async def test_a_stopped_file_resumes_after_its_last_committed_line(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine, settings: Settings
) -> None:
    async with running_fhir_server(export_polls=0) as fhir:
        fhir.load_ndjson(SYNTHEA_BULK)
        source_settings = settings.model_copy(update={"fhir_base_url": fhir.base_url})
        exports = BulkExports(sessions, source_settings, batch_size=300)
        async with sessions.begin() as session:
            import_id = (await create_export(session, source_key="default", types=["Encounter"])).id
        await exports.kick_off(import_id)
        assert await exports.kick_off(import_id)  # repeated: the recorded status URL, no second kick-off
        polled = await exports.poll(import_id)
        assert polled.complete
        [location] = polled.files

        def crash_after_two(line: int) -> None:
            if line >= 600:
                raise Crash

        with pytest.raises(Crash):
            await exports.import_file(import_id, location, on_batch=crash_after_two)
        outcome = await exports.import_file(import_id, location)
        row, files = await exports.finish(import_id)

    assert sum(1 for _, path, _ in fhir.requests if path == "$export") == 1
    total = sum(1 for line in (SYNTHEA_BULK / "Encounter.000.ndjson").read_text().splitlines() if line)
    assert (outcome.lines_done, sum(outcome.new.values())) == (total, total - 600)
    assert (row.status, row.resources_imported, files) == ("completed", total, 1)
    async with sessions() as session:
        versions = await session.scalar(select(func.count()).select_from(FhirResourceVersion))
        [file] = await session.scalars(select(BulkImportFile))
    assert versions == total
    assert (file.lines_done, file.status, file.resource_type) == (total, "done", "Encounter")


async def test_the_next_export_starts_from_the_last_completed_one(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        first = await create_export(session, source_key="default")
        first.status, first.finished_at = "completed", datetime(2026, 1, 2, tzinfo=UTC)
        first.transaction_time = datetime(2026, 1, 1, tzinfo=UTC)
        failed = await create_export(session, source_key="default")
        failed.status, failed.finished_at = "failed", datetime(2026, 2, 2, tzinfo=UTC)
        failed.transaction_time = datetime(2026, 2, 1, tzinfo=UTC)
        other = await create_export(session, source_key="other")
        other.status, other.finished_at = "completed", datetime(2026, 3, 2, tzinfo=UTC)
        other.transaction_time = datetime(2026, 3, 1, tzinfo=UTC)

    async with sessions.begin() as session:
        assert await last_transaction_time(session, "default") == datetime(2026, 1, 1, tzinfo=UTC)
        incremental = await create_export(session, source_key="default")
        full = await create_export(session, source_key="default", full=True)
        given = await create_export(session, source_key="default", since=datetime(2025, 5, 5, tzinfo=UTC))

    assert incremental.request["since"] == "2026-01-01T00:00:00+00:00"
    assert full.request["since"] is None
    assert given.request["since"] == "2025-05-05T00:00:00+00:00"
