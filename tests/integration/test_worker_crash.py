"""A worker killed in the middle of a journey loses nothing and sends nothing twice.

The worker runs as a real process (`python worker.py`) against the dev server and the test database;
it is killed with SIGKILL while the journey waits, and a fresh worker finishes the journey.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from tests.conftest import ABDUL_PATIENT_ID, REPO, patient_of, synthea_bundle
from tests.integration.test_observation_to_sms import eventually

JOURNEY = {
    "key": "crash-test",
    "version": 1,
    "name": "Survives a worker crash",
    "steps": [
        {"id": "welcome", "send": {"channel": "sms", "body": "Welcome home, {{ patient.given }}."}},
        {"id": "pause", "wait": {"duration": "PT4S"}},
        {"id": "check-in", "send": {"channel": "sms", "body": "How are you feeling, {{ patient.given }}?"}},
    ],
}


class WorkerProcess:
    """`python worker.py` with the test's settings, logging to a file."""

    def __init__(self, settings: Settings, temporal_address: str, log_file: Path) -> None:
        self.environment = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "worker.py")], env=self.environment, stdout=log, stderr=log, cwd=REPO
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def worker_process(
    api_settings: Settings, dev_server: WorkflowEnvironment, tmp_path: Path
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        api_settings, dev_server.client.service_client.config.target_host, tmp_path / "w.log"
    )
    yield process
    process.stop()


async def enrollment(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def test_killing_the_worker_mid_wait_loses_nothing_and_duplicates_nothing(
    api: httpx.AsyncClient, worker_process: WorkerProcess
) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    worker_process.start()
    started = await api.post("/v1/journeys/crash-test/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    enrollment_id = started.json()["enrollment_id"]

    async def waiting() -> bool:
        return (await enrollment(api, enrollment_id))["current_step"] == "pause"

    await eventually(waiting, timeout=60)
    worker_process.kill()
    await asyncio.sleep(6)  # the timer fires on the server while no worker is alive
    assert (await enrollment(api, enrollment_id))["status"] == "running"
    worker_process.start()

    async def completed() -> dict[str, Any] | None:
        current = await enrollment(api, enrollment_id)
        return current if current["status"] == "completed" else None

    done = await eventually(completed, timeout=60)
    assert [item["step"] for item in done["history"]] == ["welcome", "pause", "check-in"]
    sent = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert sorted(m["step_id"] for m in sent) == ["check-in", "welcome"]
    assert all(m["status"] == "sent" for m in sent)

    logs = worker_process.log_file.read_text()
    patient = patient_of(synthea_bundle())
    assert "worker started" in logs
    for secret in (
        patient["name"][0]["given"][0],
        patient["name"][0]["family"],
        "555-978-4581",
        "+15559784581",
    ):
        assert secret not in logs, "the worker logged patient data"
