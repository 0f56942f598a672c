"""PHI in Temporal is encrypted: the raw history the server keeps of a real enrollment names no
patient, and the same history decodes with the codec to the patient's data."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from aftercare.security.codec import ENCODING
from aftercare.settings import Settings
from aftercare.temporal.client import payload_codec
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.integration.test_observation_to_sms import eventually

JOURNEY = {
    "key": "noted-visit",
    "version": 1,
    "name": "Noted visit",
    "entry": {"event": {"type": "visit.noted"}},
    "steps": [
        {"id": "hello", "send": {"channel": "sms", "body": "Hi {{ patient.given }}, thanks for visiting."}}
    ],
}


def payloads_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every Payload in a history's protobuf JSON."""
    if isinstance(node, dict):
        if "metadata" in node and "data" in node:
            yield node
        for value in node.values():
            yield from payloads_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from payloads_in(value)


async def test_the_servers_history_holds_no_readable_patient_data_and_decodes_with_the_codec(
    api: httpx.AsyncClient, worker: Worker, dev_server: WorkflowEnvironment, api_settings: Settings
) -> None:
    imported = await api.post("/v1/fhir/import", params={"triggers": "false"}, json=synthea_bundle())
    assert imported.status_code == 200
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    trigger = {"type": "visit.noted", "patient_id": ABDUL_PATIENT_ID, "data": {"note": "Abdul Koepp came by"}}
    started = (await api.post("/v1/triggers", json=trigger)).json()["started"]
    [enrollment_id] = started
    await eventually(
        lambda: _finished(api, enrollment_id),
    )

    raw_client = await Client.connect(dev_server.client.service_client.config.target_host)  # no codec
    history = await raw_client.get_workflow_handle(f"enrollment-{enrollment_id}").fetch_history()
    raw = history.to_json()

    for phi in ("Abdul", "Koepp", "555-", "came by"):
        assert phi not in raw
    found = list(payloads_in(json.loads(raw)))
    encrypted = [item for item in found if base64.b64decode(item["metadata"].get("encoding", "")) == ENCODING]
    assert len(encrypted) >= 3
    codec = payload_codec(api_settings)
    assert codec is not None
    decoded = await codec.decode(
        [
            Payload(
                metadata={key: base64.b64decode(value) for key, value in item["metadata"].items()},
                data=base64.b64decode(item.get("data", "")),
            )
            for item in encrypted
        ]
    )
    plain = b" ".join(payload.data for payload in decoded).decode()
    assert "Abdul Koepp came by" in plain
    assert ABDUL_PATIENT_ID in plain


async def _finished(api: httpx.AsyncClient, enrollment_id: str) -> bool:
    answer = await api.get(f"/v1/enrollments/{enrollment_id}")
    return answer.json()["status"] == "completed"
