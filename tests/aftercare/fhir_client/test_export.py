"""Bulk Data export: kick-off, polling as the server asks, the manifest, and streaming the NDJSON files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from aftercare.fhir_client.client import FhirClient
from aftercare.fhir_client.errors import FhirClientError, FhirNotFound
from tests.aftercare.fhir_client.conftest import Sleeps
from tests.conftest import SYNTHEA_BULK
from tests.fhir_server import FhirTestServer
from tests.fhir_server.store import ndjson_resources


@pytest.fixture(scope="module")
def bulk_resources() -> list[dict[str, Any]]:
    """The resources of the 13-patient bulk export, read once."""
    return list(ndjson_resources(SYNTHEA_BULK))


@pytest.fixture
def exporting(fhir: FhirTestServer, bulk_resources: list[dict[str, Any]]) -> FhirTestServer:
    """A server holding the 13-patient bulk export, answering 202 twice before the manifest."""
    fhir.load_resources(bulk_resources)
    fhir.export_polls = 2
    fhir.export_retry_after = "3"
    return fhir


async def test_an_export_is_polled_as_asked_then_its_files_stream_every_resource(
    exporting: FhirTestServer, sleeps: Sleeps
) -> None:
    async with FhirClient(exporting.base_url, sleep=sleeps) as client:
        status_url = await client.start_export("Patient/$export", types=["Patient", "Condition"])
        first = await client.export_status(status_url)
        manifest = await client.wait_for_export(status_url)
        lines = {
            output["type"]: [json.loads(line) async for line in client.stream_lines(output["url"])]
            for output in manifest["output"]
        }
    assert status_url.startswith(f"{exporting.base_url}/$export-status/")
    assert (first.complete, first.retry_after, first.progress) == (False, 3.0, "in progress (1 more poll(s))")
    assert sleeps.waits == [3.0]
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert (
        "Patient/$export?_outputFormat=application%2Ffhir%2Bndjson&_type=Patient%2CCondition"
        in manifest["request"]
    )
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [
        ("Condition", len(exporting.store.of_type("Condition"))),
        ("Patient", 13),
    ]
    assert {p["id"] for p in lines["Patient"]} == {p["id"] for p in exporting.store.of_type("Patient")}


async def test_a_large_type_is_split_across_several_files(exporting: FhirTestServer) -> None:
    exporting.export_polls = 0
    exporting.export_max_lines = 5
    async with FhirClient(exporting.base_url) as client:
        manifest = await client.wait_for_export(await client.start_export(types=["Patient"]))
        ids = [
            json.loads(line)["id"]
            for o in manifest["output"]
            for line in [x async for x in client.stream_lines(o["url"])]
        ]
    assert [o["count"] for o in manifest["output"]] == [5, 5, 3]
    assert sorted(ids) == sorted(p["id"] for p in exporting.store.of_type("Patient"))


async def test_since_exports_only_what_changed_after(exporting: FhirTestServer) -> None:
    exporting.export_polls = 0
    since = datetime.now(UTC)
    exporting.put({**exporting.store.of_type("Patient")[0], "gender": "other"})
    async with FhirClient(exporting.base_url) as client:
        manifest = await client.wait_for_export(await client.start_export(since=since))
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [("Patient", 1)]


async def test_a_group_export_holds_its_members_records(exporting: FhirTestServer) -> None:
    exporting.export_polls = 0
    patients = exporting.store.of_type("Patient")[:2]
    exporting.put(
        {
            "resourceType": "Group",
            "id": "g1",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{p['id']}"}} for p in patients],
        }
    )
    async with FhirClient(exporting.base_url) as client:
        manifest = await client.wait_for_export(
            await client.start_export("Group/g1/$export", types=["Patient"])
        )
        with pytest.raises(FhirNotFound):
            await client.start_export("Group/nobody/$export")
    assert [(o["type"], o["count"]) for o in manifest["output"]] == [("Patient", 2)]


async def test_files_need_the_token_when_the_manifest_says_so(exporting: FhirTestServer) -> None:
    from aftercare.fhir_client.auth import ClientCredentials

    exporting.export_polls = 0
    exporting.require_auth = True
    exporting.register_client("bulk", secret="s")
    auth = ClientCredentials(None, "bulk", "s", base_url=exporting.base_url)
    async with FhirClient(exporting.base_url, auth=auth) as client:
        manifest = await client.wait_for_export(await client.start_export(types=["Patient"]))
        url = manifest["output"][0]["url"]
        assert manifest["requiresAccessToken"] is True
        assert len([line async for line in client.stream_lines(url, with_auth=True)]) == 13
        with pytest.raises(FhirClientError) as raised:
            [line async for line in client.stream_lines(url)]
    assert raised.value.status == 401


async def test_a_cancelled_export_is_gone(exporting: FhirTestServer) -> None:
    async with FhirClient(exporting.base_url) as client:
        status_url = await client.start_export()
        await client.cancel_export(status_url)
        with pytest.raises(FhirNotFound):
            await client.export_status(status_url)


async def test_a_kick_off_without_prefer_respond_async_is_refused(exporting: FhirTestServer) -> None:
    async with FhirClient(exporting.base_url) as client:
        with pytest.raises(FhirClientError) as raised:
            await client.request("GET", "$export")
    assert raised.value.status == 400
    assert raised.value.issues == ["$export needs the header Prefer: respond-async"]


async def test_a_retry_after_of_zero_polls_again_at_once(exporting: FhirTestServer, sleeps: Sleeps) -> None:
    exporting.export_retry_after = "0"
    async with FhirClient(exporting.base_url, sleep=sleeps) as client:
        manifest = await client.wait_for_export(await client.start_export(types=["Patient"]), poll_seconds=5)
    assert manifest["output"][0]["count"] == 13
    assert sleeps.waits == [0.0, 0.0]
