"""A worker killed after Twilio took a call and before the call was recorded: the replacement worker
finds the call by the CallSid Twilio's callback reported and never places a second one.

The worker is a real process (`python worker.py`) with the real Twilio SDK; Twilio is Prism serving
Twilio's spec, behind a small proxy that counts the calls created and holds the answer to the first
one until the worker is killed (SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from aftercare.settings import Settings
from tests.api.webhooks.twilio_signing import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.conftest import ABDUL_PATIENT_ID, synthea_bundle
from tests.helpers import TWILIO_ACCOUNT_SID, with_twilio
from tests.integration.test_observation_to_sms import eventually
from tests.integration.test_worker_crash import WorkerProcess
from tests.voice_calls import TWO_QUESTIONS, twilio_says

JOURNEY = {
    "key": "crash-call",
    "version": 1,
    "name": "A call survives a worker crash",
    "steps": [
        {"id": "check-call", "call": TWO_QUESTIONS},
        {"id": "await-call", "wait_for": {"event": "voice.answered", "timeout": "PT1H"}},
    ],
}


class HoldingProxy:
    """Forwards to Prism; counts `calls.create` and holds the answer to the first until released."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.created: list[str] = []
        self.placed = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = httpx.request(
                    self.command, proxy.target + self.path, content=body, headers=headers, timeout=30
                )
                if self.command == "POST" and self.path.endswith("/Calls.json"):
                    proxy.created.append(json.loads(answer.content)["sid"])
                    if len(proxy.created) == 1:
                        proxy.placed.set()
                        proxy.release.wait(60)
                try:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the worker that asked was killed

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def proxy(twilio_mock: str) -> Iterator[HoldingProxy]:
    running = HoldingProxy(twilio_mock)
    yield running
    running.close()


@pytest.fixture
def api_settings(settings: Settings, proxy: HoldingProxy) -> Settings:
    return with_twilio(
        settings, "voice-crash-process", proxy.url, AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL
    )


@pytest.fixture
def worker_process(
    api_settings: Settings, dev_server: WorkflowEnvironment, tmp_path: Path
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        api_settings, dev_server.client.service_client.config.target_host, tmp_path / "w.log"
    )
    process.environment.update(
        TWILIO_ACCOUNT_SID=TWILIO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_BASE_URL=api_settings.twilio_base_url or "",
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
    )
    yield process
    process.stop()


async def test_a_worker_killed_after_twilio_took_the_call_never_places_a_second_one(
    api: httpx.AsyncClient, worker_process: WorkerProcess, proxy: HoldingProxy
) -> None:
    await api.post("/v1/fhir/import", json=synthea_bundle(), params={"triggers": "false"})
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    worker_process.start()
    started = await api.post("/v1/journeys/crash-call/enrollments", json={"patient_id": ABDUL_PATIENT_ID})
    enrollment_id = started.json()["enrollment_id"]

    assert await asyncio.to_thread(proxy.placed.wait, 60), "the call was never placed"
    worker_process.kill()
    [call] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
    assert (call["status"], call["provider_message_id"]) == ("sending", None)
    # Twilio reports the call it took; the callback URL names our message.
    ringing = {"CallSid": proxy.created[0], "CallStatus": "ringing"}
    assert (await twilio_says(api, "status", call["id"], ringing)).status_code == 204
    proxy.release.set()
    worker_process.start()

    async def recorded() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/v1/enrollments/{enrollment_id}")).json()
        if body["current_step"] != "await-call":
            return None
        [message] = (await api.get("/v1/messages", params={"enrollment_id": enrollment_id})).json()["items"]
        return message if message["status"] == "queued" else None

    message = await eventually(recorded, timeout=90)
    assert message["provider_message_id"] == proxy.created[0]
    assert len(proxy.created) == 1
