"""File imports into the real database: the Synthea Bulk Data export, idempotence, parked lines,
resuming after a crash, Bundles, and memory that stays flat as the file grows."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.bulk.files import import_files
from bench.fhir_import import write_file
from models.tables import BulkImport, BulkImportFile, FhirResource, FhirResourceVersion, Patient
from tests.conftest import SYNTHEA_BULK, SYNTHEA_BUNDLES, truncate_all


def synthea_lines() -> dict[str, list[str]]:
    """The export's resource lines by file name."""
    return {
        path.name: [line for line in path.read_text().splitlines() if line.strip()]
        for path in sorted(SYNTHEA_BULK.glob("[A-Z]*.ndjson"))
    }


async def versions_by_type(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(FhirResourceVersion.resource_type, func.count()).group_by(
                FhirResourceVersion.resource_type
            )
        )
        return Counter({row[0]: row[1] for row in rows})


async def file_rows(sessions: async_sessionmaker[AsyncSession], import_id: str) -> dict[str, BulkImportFile]:
    async with sessions() as session:
        rows = await session.scalars(select(BulkImportFile).where(BulkImportFile.import_id == import_id))
        return {Path(row.location).name: row for row in rows}


async def test_the_synthea_export_imports_every_resource_of_every_type(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    lines = synthea_lines()
    expected = Counter({name.split(".")[0]: len(found) for name, found in lines.items()})

    summary = await import_files(sessions, [SYNTHEA_BULK], phone_region="US")

    assert await versions_by_type(sessions) == expected
    assert summary.new == expected
    assert summary.parked == 4  # log.ndjson: export log events, not resources
    files = await file_rows(sessions, summary.import_id)
    for name, found in lines.items():
        assert files[name].lines_done == len(found)
        assert files[name].status == "done"
        assert files[name].resource_type == name.split(".")[0]
    assert files["log.ndjson"].lines_parked == 4
    assert files["log.ndjson"].parked is not None
    assert files["log.ndjson"].parked[0] == {"line": 1, "reason": "not a FHIR resource: no resourceType"}
    async with sessions() as session:
        row = await session.get(BulkImport, summary.import_id)
        assert row is not None
        assert (row.status, row.kind, row.fire_triggers) == ("completed", "files", False)
        assert row.resources_imported == sum(expected.values())
        assert row.resources_parked == 4
        assert await session.scalar(select(func.count()).select_from(Patient)) == expected["Patient"]
        current = await session.scalar(select(func.count()).select_from(FhirResource))
        assert current == sum(expected.values())
        fires = await session.scalar(
            select(func.count()).select_from(FhirResourceVersion).where(FhirResourceVersion.fires_triggers)
        )
        assert fires == 0


async def test_importing_the_same_files_again_stores_no_new_version(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    first = await import_files(sessions, [SYNTHEA_BULK], phone_region="US")
    before = await versions_by_type(sessions)

    again = await import_files(sessions, [SYNTHEA_BULK], phone_region="US")

    assert again.import_id != first.import_id
    assert sum(again.new.values()) == 0
    assert again.unchanged == first.new
    assert await versions_by_type(sessions) == before


async def test_bad_lines_are_parked_with_their_reason_and_the_rest_imported(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine, tmp_path: Path
) -> None:
    good = synthea_lines()["Condition.000.ndjson"][:10]
    bad = [
        '{"resourceType": "Condition", "id": "broken"',
        "[1, 2, 3]",
        '{"resourceType": "NotAType", "id": "x"}',
        '{"resourceType": "Condition", "subject": {"reference": "Patient/p"}}',
    ]
    path = tmp_path / "Condition.mixed.ndjson"
    path.write_text("\n".join([*good[:3], bad[0], *good[3:6], bad[1], "", bad[2], *good[6:], bad[3]]) + "\n")

    summary = await import_files(sessions, [path], phone_region="US")

    assert summary.new == Counter({"Condition": 10})
    assert summary.parked == 4
    [row] = (await file_rows(sessions, summary.import_id)).values()
    assert row.lines_done == 14  # non-blank lines
    assert row.lines_parked == 4
    assert row.parked is not None
    assert [item["line"] for item in row.parked] == [4, 8, 9, 14]
    reasons = [item["reason"] for item in row.parked]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "not a JSON object"
    assert reasons[2] == "'NotAType' is not a FHIR resource type"
    assert reasons[3] == "Condition without a valid id"
    assert "Patient/p" not in json.dumps(row.parked)  # reasons never carry content


class Crash(Exception):
    """The process dying after a committed batch."""


async def test_an_import_stopped_after_some_batches_resumes_without_duplicates(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine, tmp_path: Path
) -> None:
    lines = synthea_lines()
    path = tmp_path / "Mixed.ndjson"
    chosen = lines["Encounter.000.ndjson"][:1200] + lines["Procedure.000.ndjson"][:1300]
    path.write_text("\n".join(chosen) + "\n")

    def crash_after_two(line: int) -> None:
        if line >= 1000:
            raise Crash

    with pytest.raises(Crash):
        await import_files(sessions, [path], phone_region="US", batch_size=500, on_batch=crash_after_two)

    async with sessions() as session:
        [row] = await session.scalars(select(BulkImportFile))
        import_id = row.import_id
        assert (row.lines_done, row.status) == (1000, "importing")
        assert await session.scalar(select(func.count()).select_from(FhirResourceVersion)) == 1000

    resumed = await import_files(sessions, [], phone_region="US", resume=import_id, batch_size=500)

    assert resumed.import_id == import_id
    assert sum(resumed.new.values()) == 1500
    assert await versions_by_type(sessions) == Counter({"Encounter": 1200, "Procedure": 1300})
    async with sessions() as session:
        [row] = await session.scalars(select(BulkImportFile))
        assert (row.lines_done, row.status, row.resources_new) == (2500, "done", 2500)
        imported = await session.get(BulkImport, import_id)
        assert imported is not None
        assert (imported.status, imported.resources_imported) == ("completed", 2500)


async def test_bundle_files_import_with_their_references_resolved(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    paths = sorted(SYNTHEA_BUNDLES.glob("*.json"))[:2]
    entries = sum(len(json.loads(path.read_text())["entry"]) for path in paths)

    summary = await import_files(sessions, paths, phone_region="US")

    assert summary.parked == 0
    assert sum(summary.new.values()) == entries
    async with sessions() as session:
        contents: list[dict[str, Any]] = list(
            await session.scalars(
                select(FhirResource.content).where(FhirResource.resource_type == "Encounter")
            )
        )
    assert contents
    assert all("urn:uuid:" not in json.dumps(content) for content in contents)


async def _peak_import(sessions: async_sessionmaker[AsyncSession], path: Path) -> int:
    tracemalloc.start()
    try:
        summary = await import_files(sessions, [path], phone_region="US", batch_size=500)
        peak: int = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.parked == 0
    return peak


async def test_memory_stays_flat_as_the_file_grows(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine, tmp_path: Path
) -> None:
    small, large = tmp_path / "small.ndjson", tmp_path / "large.ndjson"
    write_file(small, 8_000)
    large_size = write_file(large, 32_000)
    await import_files(sessions, [small], phone_region="US")  # warm-up: imports and caches

    await truncate_all(empty_database)
    small_peak = await _peak_import(sessions, small)
    await truncate_all(empty_database)
    large_peak = await _peak_import(sessions, large)

    # Four times the lines, the same working set: two batches (one read while one is written).
    assert large_peak < small_peak * 1.25 + 2**20, (
        f"{small_peak / 2**20:.1f} MB, then {large_peak / 2**20:.1f} MB"
    )
    assert large_peak < large_size / 2, f"peak {large_peak / 2**20:.1f} MB for {large_size / 2**20:.1f} MB"
