"""`BulkExportWorkflow` on the Temporal dev server against the local FHIR test server: kick-off, status
polls that wait as `Retry-After` asks (workflow timers), every output file imported, and a second
export asking only for what changed since the first one's transaction time (`_since`)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities
from aftercare.bulk.launch import launch_export
from aftercare.settings import Settings
from models.bulk import BulkExportResult
from models.tables import BulkImportFile, FhirResourceVersion
from tests.conftest import SYNTHEA_BULK
from tests.fhir_server import running_fhir_server
from worker import build_worker


def expected_counts() -> Counter[str]:
    return Counter(
        {
            path.name.split(".")[0]: sum(1 for line in path.read_text().splitlines() if line.strip())
            for path in SYNTHEA_BULK.glob("[A-Z]*.ndjson")
        }
    )


async def versions_by_type(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(FhirResourceVersion.resource_type, func.count()).group_by(
                FhirResourceVersion.resource_type
            )
        )
        return Counter({row[0]: row[1] for row in rows})


async def test_an_export_imports_everything_then_the_next_asks_only_for_changes(
    sessions: async_sessionmaker[AsyncSession],
    empty_database: AsyncEngine,
    dev_server: WorkflowEnvironment,
    api_settings: Settings,
) -> None:
    client = dev_server.client
    async with running_fhir_server(export_polls=2, export_retry_after="1") as fhir:
        fhir.load_ndjson(SYNTHEA_BULK)
        settings = api_settings.model_copy(update={"fhir_base_url": fhir.base_url})
        async with build_worker(client, settings, build_activities(sessions, settings, client)):
            first = await launch_export(sessions, client, settings.temporal_task_queue, source_key="default")
            handle = client.get_workflow_handle(first.workflow_id, result_type=BulkExportResult)
            result = await handle.result()

            assert first.since is None
            assert result.status == "completed"
            assert result.resources_imported == sum(expected_counts().values())
            assert await versions_by_type(sessions) == expected_counts()
            assert result.files == len(expected_counts())
            async with sessions() as session:
                files = list(await session.scalars(select(BulkImportFile)))
            assert {(file.resource_type, file.lines_done, file.status) for file in files} == {
                (resource_type, count, "done") for resource_type, count in expected_counts().items()
            }
            timers = [
                event
                async for event in handle.fetch_history_events()
                if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
            ]
            assert [
                timer.timer_started_event_attributes.start_to_fire_timeout.seconds for timer in timers
            ] == [
                1,
                1,
            ]
            kick_offs = [query for method, path, query in fhir.requests if path == "$export"]
            assert len(kick_offs) == 1
            assert "_since" not in parse_qs(kick_offs[0])

            patient = fhir.store.of_type("Patient")[0]
            fhir.put({**patient, "gender": "unknown"}, notify=False)
            second = await launch_export(sessions, client, settings.temporal_task_queue, source_key="default")
            again = await client.get_workflow_handle(
                second.workflow_id, result_type=BulkExportResult
            ).result()

            assert second.since == result.transaction_time
            assert again.status == "completed"
            assert (again.resources_imported, again.files) == (1, 1)
            kick_offs = [query for method, path, query in fhir.requests if path == "$export"]
            assert len(kick_offs) == 2
            [since] = parse_qs(kick_offs[1])["_since"]
            assert result.transaction_time is not None
            assert since == result.transaction_time.isoformat()
    expected = expected_counts()
    expected["Patient"] += 1
    assert await versions_by_type(sessions) == expected
