"""An import fires journeys only when asked."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.bulk.files import import_files
from aftercare.bulk.importer import TriggerPath
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.settings import Settings
from models.tables import Enrollment
from tests.conftest import SYNTHEA_BULK
from tests.helpers import publish

JOURNEY = {
    "key": "bulk-condition-followup",
    "version": 1,
    "name": "Condition follow-up",
    "entry": {"fhir": {"resource": "Condition", "criteria": "Condition.code.exists()"}},
    "steps": [{"id": "done", "end": {"outcome": "completed"}}],
}


def small_export(directory: Path) -> Path:
    """The export's Patients and its first five Conditions."""
    lines = (SYNTHEA_BULK / "Patient.000.ndjson").read_text().splitlines()
    lines += (SYNTHEA_BULK / "Condition.000.ndjson").read_text().splitlines()[:5]
    path = directory / "small.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


async def enrollments(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Enrollment)) or 0


async def test_an_import_starts_no_journey_by_default(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine, tmp_path: Path
) -> None:
    await publish(sessions, JOURNEY)

    summary = await import_files(sessions, [small_export(tmp_path)], phone_region="US")

    assert summary.new["Condition"] == 5
    assert summary.triggered == 0
    assert await enrollments(sessions) == 0


async def test_an_import_with_triggers_starts_the_journeys_its_resources_enter(
    sessions: async_sessionmaker[AsyncSession],
    empty_database: AsyncEngine,
    tmp_path: Path,
    dev_server: WorkflowEnvironment,
    api_settings: Settings,
) -> None:
    await publish(sessions, JOURNEY)
    starter = EnrollmentStarter(sessions, dev_server.client, api_settings.temporal_task_queue)

    summary = await import_files(
        sessions,
        [small_export(tmp_path)],
        phone_region="US",
        fire_triggers=True,
        triggers=TriggerPath(starter, dev_server.client),
    )

    assert summary.new["Condition"] == 5
    assert summary.triggered == 5
    assert await enrollments(sessions) == 5
