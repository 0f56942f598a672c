"""The official `temporal` CLI reads Aftercare's encrypted workflows through the API's codec server:
`temporal workflow metadata` shows a running enrollment's current step, and `temporal workflow query`
answers with its decoded state. The CLI sends `{}` for an empty payload list (protobuf JSON leaves empty
lists out), which the codec takes as no payloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.devstack.temporal_server import temporal_cli
from aftercare.settings import Settings
from api.app import create_app
from tests.conftest import ABDUL_PATIENT_ID, AUTH_HEADERS, DEV_API_KEY, synthea_bundle
from tests.integration.test_observation_to_sms import eventually
from tests.serving import serving

pytestmark = pytest.mark.usefixtures("worker", "empty_database")

JOURNEY = {
    "key": "codec-cli-check-in",
    "version": 1,
    "name": "Check-in the CLI reads",
    "steps": [
        {"id": "ask", "send": {"channel": "sms", "body": "Hi {{ patient.given }}, how are you? Reply 1-5."}},
        {"id": "await-answer", "wait_for": {"event": "sms.reply", "timeout": "P2D"}},
        {"id": "done", "end": {"outcome": "answered"}},
    ],
}


@pytest.fixture
async def api_url(api_settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[str]:
    """The API listening on a real port, for the CLI to call."""
    async with serving(create_app(api_settings, temporal=dev_server.client)) as url:
        yield url


async def waiting_enrollment(api: httpx.AsyncClient) -> str:
    assert (
        await api.post("/v1/fhir/import", params={"triggers": "false"}, json=synthea_bundle())
    ).status_code == 200
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    created = await api.post(
        f"/v1/journeys/{JOURNEY['key']}/enrollments", json={"patient_id": ABDUL_PATIENT_ID}
    )
    enrollment_id: str = created.json()["enrollment_id"]

    async def waiting() -> bool:
        body = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        return bool(body["current_step"] == "await-answer")

    await eventually(waiting)
    return enrollment_id


async def temporal(dev_server: WorkflowEnvironment, *arguments: str) -> str:
    """Run the `temporal` CLI against the dev server; its output (a failure shows what it said)."""
    process = await asyncio.create_subprocess_exec(
        temporal_cli(),
        *arguments,
        "--address",
        dev_server.client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, f"temporal {' '.join(arguments)} failed:\n{err.decode()}{out.decode()}"
    return out.decode()


async def test_the_temporal_cli_shows_a_running_enrollments_step_and_state_through_the_codec(
    api_url: str, dev_server: WorkflowEnvironment
) -> None:
    async with httpx.AsyncClient(base_url=api_url, headers=AUTH_HEADERS, timeout=30) as api:
        enrollment_id = await waiting_enrollment(api)
    workflow_id = f"enrollment-{enrollment_id}"
    codec = ["--codec-endpoint", f"{api_url}/codec", "--codec-header", f"X-API-Key={DEV_API_KEY}"]

    metadata = await temporal(dev_server, "workflow", "metadata", "--workflow-id", workflow_id, *codec)
    state_output = await temporal(
        dev_server, "workflow", "query", "--workflow-id", workflow_id, "--type", "state", "-o", "json", *codec
    )
    bearer = await temporal(
        dev_server,
        "workflow",
        "query",
        "--workflow-id",
        workflow_id,
        "--type",
        "state",
        "--codec-endpoint",
        f"{api_url}/codec",
        "--codec-auth",
        f"Bearer {DEV_API_KEY}",
    )

    assert "**await-answer**: Waiting for sms.reply" in metadata
    state = json.loads(state_output)
    assert "await-answer" in json.dumps(state)
    assert "await-answer" in bearer
