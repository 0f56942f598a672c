"""`POST /v1/fhir/exports` runs a Bulk Data export through the worker; `GET /v1/fhir/imports[/{id}]`
follows exports and file imports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.registry import build_activities
from aftercare.bulk.files import import_files
from aftercare.settings import Settings
from tests.conftest import AUTH_HEADERS, SYNTHEA_BULK, serve
from tests.fhir_server import FhirTestServer, running_fhir_server
from worker import build_worker


@pytest.fixture
async def fhir() -> AsyncIterator[FhirTestServer]:
    async with running_fhir_server(export_polls=1, export_retry_after="1") as server:
        server.load_ndjson(SYNTHEA_BULK)
        yield server


@pytest.fixture
async def bulk_api(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    empty_database: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    fhir: FhirTestServer,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker, with the test FHIR server as the default source."""
    from api.app import create_app

    settings = api_settings.model_copy(update={"fhir_base_url": fhir.base_url})
    app = create_app(settings, temporal=dev_server.client)
    activities = build_activities(sessions, settings, dev_server.client)
    async with serve(app, AUTH_HEADERS) as client, build_worker(dev_server.client, settings, activities):
        yield client


async def finished(api: httpx.AsyncClient, import_id: str, timeout: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            view: dict[str, Any] = (await api.get(f"/v1/fhir/imports/{import_id}")).json()
            if view["status"] in ("completed", "failed"):
                return view
            await asyncio.sleep(0.2)


def line_counts() -> dict[str, int]:
    return {
        path.name.split(".")[0]: sum(1 for line in path.read_text().splitlines() if line.strip())
        for path in SYNTHEA_BULK.glob("[A-Z]*.ndjson")
    }


async def test_an_export_is_accepted_then_followed_to_the_end(bulk_api: httpx.AsyncClient) -> None:
    started = await bulk_api.post("/v1/fhir/exports", json={"types": ["Patient", "Condition"]})

    assert started.status_code == 202
    body = started.json()
    assert body["status"] == "pending"
    assert body["since"] is None
    view = await finished(bulk_api, body["id"])
    assert view["status"] == "completed", view["error"]
    assert (view["kind"], view["source"], view["fire_triggers"]) == ("export", "default", False)
    assert view["request"]["types"] == ["Patient", "Condition"]
    counts = line_counts()
    assert view["resources_imported"] == counts["Patient"] + counts["Condition"]
    assert view["transaction_time"] is not None
    assert sorted((file["resource_type"], file["lines_done"], file["status"]) for file in view["files"]) == [
        ("Condition", counts["Condition"], "done"),
        ("Patient", counts["Patient"], "done"),
    ]
    listed = (await bulk_api.get("/v1/fhir/imports")).json()["imports"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert listed[0]["files"] is None

    again = (await bulk_api.post("/v1/fhir/exports", json={"types": ["Patient"]})).json()
    assert again["since"] is not None  # incremental: since the last completed export
    assert (await finished(bulk_api, again["id"]))["resources_imported"] == 0


async def test_an_export_from_an_unknown_source_is_refused(bulk_api: httpx.AsyncClient) -> None:
    answer = await bulk_api.post("/v1/fhir/exports", json={"source": "nowhere"})

    assert answer.status_code == 404
    assert (await bulk_api.get("/v1/fhir/imports")).json()["imports"] == []


async def test_a_file_import_shows_its_parked_lines(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "Condition.000.ndjson"
    good = (SYNTHEA_BULK / "Condition.000.ndjson").read_text().splitlines()[:3]
    path.write_text("\n".join([good[0], "not json", *good[1:]]) + "\n")
    summary = await import_files(sessions, [path], phone_region="US")

    view = (await api.get(f"/v1/fhir/imports/{summary.import_id}")).json()

    assert (view["kind"], view["status"], view["resources_imported"], view["resources_parked"]) == (
        "files",
        "completed",
        3,
        1,
    )
    [file] = view["files"]
    assert (file["resource_type"], file["lines_done"], file["lines_parked"]) == ("Condition", 4, 1)
    assert file["parked"][0]["line"] == 2
    assert file["parked"][0]["reason"].startswith("not JSON")
    assert (await api.get("/v1/fhir/imports/imp-missing")).status_code == 404
