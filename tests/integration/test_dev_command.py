"""`aftercare dev`: the whole stack from one command, stopped cleanly, and durable across restarts.

These run the real command in a subprocess with the embedded PostgreSQL (`pgserver`), as on a fresh
machine with nothing installed but the project.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from temporalio.client import Client

from aftercare.devstack.ports import port_is_free
from tests.conftest import REPO
from tests.helpers import run_aftercare
from tests.prism import free_port


class DevCommand:
    """`python -m aftercare dev ...` with its output collected."""

    IGNORED = frozenset(
        {"DATABASE_URL", "AFTERCARE_DEV_API_KEY", "AFTERCARE_CODEC_KEYS", "TWILIO_AUTH_TOKEN"}
    )

    def __init__(self, data_dir: Path, ports: dict[str, int], *extra: str) -> None:
        self.ports = ports
        # As on a fresh machine: no database, development key or codec key from the suite's environment.
        environment = {key: value for key, value in os.environ.items() if key not in self.IGNORED}
        environment["LOG_FORMAT"] = "json"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aftercare",
                "dev",
                "--data-dir",
                str(data_dir),
                "--api-port",
                str(ports["api"]),
                "--temporal-port",
                str(ports["temporal"]),
                "--ui-port",
                str(ports["ui"]),
                "--mllp-port",
                str(ports.get("mllp", 0)),
                *extra,
            ],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for(self, text: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.output):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n{''.join(self.output)}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def api_key(self) -> str:
        """The development key the banner prints."""
        line = next(line for line in self.output if line.strip().startswith("API key"))
        return line.split()[2]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@pytest.fixture
def ports() -> dict[str, int]:
    return {"api": free_port(), "temporal": free_port(), "ui": free_port(), "mllp": free_port()}


@pytest.fixture
def commands() -> Iterator[list[DevCommand]]:
    started: list[DevCommand] = []
    yield started
    for command in started:
        if command.process.poll() is None:
            command.process.kill()
            command.process.wait()


def wait_until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def demo_enrollment(command: DevCommand) -> dict[str, Any]:
    messages = httpx.get(f"{command.api}/v1/messages", headers=command.headers).json()["items"]
    [sms] = messages
    enrollment: dict[str, Any] = httpx.get(
        f"{command.api}/v1/enrollments/{sms['enrollment_id']}", headers=command.headers
    ).json()
    return enrollment


def ui_decodes_the_enrollment_through_the_codec(command: DevCommand, enrollment_id: str) -> None:
    """The Temporal UI is wired to the API's codec: an encrypted payload from the server's history
    decodes there, from the UI's origin, without any other credential."""
    ui = f"http://127.0.0.1:{command.ports['ui']}"
    endpoint = httpx.get(f"{ui}/api/v1/settings").json()["Codec"]["Endpoint"]
    assert endpoint.startswith(f"{command.api}/codec/ui/")

    async def first_payload() -> dict[str, Any]:
        raw = await Client.connect(f"127.0.0.1:{command.ports['temporal']}")  # no codec
        history = await raw.get_workflow_handle(f"enrollment-{enrollment_id}").fetch_history()
        [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
        return json.loads(MessageToJson(payload))

    payload = asyncio.run(first_payload())
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    answer = httpx.post(
        f"{endpoint}/decode",
        json={"payloads": [payload]},
        headers={"Origin": ui, "X-Namespace": "default"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ui
    [decoded] = answer.json()["payloads"]
    assert enrollment_id in base64.b64decode(decoded["data"]).decode()


def aftercare(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Another `aftercare` command, run in `cwd` beside the running stack."""
    return run_aftercare(cwd, *arguments, unset=DevCommand.IGNORED)


def test_dev_runs_the_stack_stops_cleanly_keeps_journeys_across_a_restart_and_takes_signed_texts(
    tmp_path: Path, ports: dict[str, int], commands: list[DevCommand]
) -> None:
    data_dir = tmp_path / ".aftercare"
    first = DevCommand(data_dir, ports, "--demo")
    commands.append(first)
    first.wait_for("Aftercare is running")

    assert httpx.get(f"{first.api}/healthz").json()["status"] == "ok"
    assert httpx.get(f"http://127.0.0.1:{ports['ui']}/").status_code == 200
    assert any(f"http://127.0.0.1:{ports['ui']}" in line for line in first.output)
    assert first.api_key.startswith("ak_dev_")
    assert any(line.strip().startswith("Twilio token") for line in first.output)
    assert httpx.get(f"{first.api}/v1/messages").status_code == 401
    enrollment = wait_until(lambda: (e := demo_enrollment(first))["current_step"] == "await-reply" and e)
    assert enrollment["journey_key"] == "hba1c-followup"
    ui_decodes_the_enrollment_through_the_codec(first, enrollment["enrollment_id"])
    assert (data_dir / "temporal.db").exists()
    assert (data_dir / "pg").is_dir()
    # Commands run beside the data directory use the stack's embedded database.
    made = aftercare(tmp_path, "api-keys", "create", "--name", "beside-the-stack", "--role", "operator")
    assert made.returncode == 0, made.stderr
    keys = httpx.get(f"{first.api}/v1/api-keys", headers=first.headers).json()["items"]
    assert "beside-the-stack" in [key["name"] for key in keys]

    assert first.stop(signal.SIGTERM) == 0
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())
    stopped = aftercare(tmp_path, "api-keys", "list")
    assert (stopped.returncode, stopped.stderr.count("\n")) == (1, 1)
    assert "the dev stack in .aftercare/ is not running: start it with `make dev`" in stopped.stderr

    second = DevCommand(data_dir, ports, "--demo")  # the demo again: nothing is sent twice
    commands.append(second)
    second.wait_for("Aftercare is running")
    assert any("was already there, so nothing was sent again" in line for line in second.output)
    assert second.api_key == first.api_key  # kept under the data directory
    resumed = demo_enrollment(second)  # still the one text
    assert (resumed["enrollment_id"], resumed["status"]) == (enrollment["enrollment_id"], "running")

    replied = aftercare(tmp_path, "dev", "sms-reply", "--patient", resumed["patient_id"], "--body", "YES")
    assert replied.returncode == 0, replied.stderr
    done = wait_until(
        lambda: (
            (
                e := httpx.get(
                    f"{second.api}/v1/enrollments/{resumed['enrollment_id']}", headers=second.headers
                ).json()
            )["status"]
            == "completed"
            and e
        )
    )
    assert [item["step"] for item in done["history"]][-2:] == ["thanks", "done"]
    texts = httpx.get(f"{second.api}/v1/messages", headers=second.headers).json()["items"]
    assert {text["provider"] for text in texts} == {"outbox"}  # a Twilio token alone sends nothing out
    phone = texts[0]["to"]

    stop = aftercare(tmp_path, "dev", "sms-reply", "--patient", resumed["patient_id"], "--body", "STOP")
    assert stop.returncode == 0, stop.stderr
    suppressions = httpx.get(f"{second.api}/v1/suppressions", headers=second.headers).json()["items"]
    assert [(item["channel"], item["address"]) for item in suppressions] == [("sms", phone)]
    unsigned = httpx.post(f"{second.api}/webhooks/twilio/inbound", data={"From": phone, "Body": "START"})
    assert unsigned.status_code == 403
    assert second.stop(signal.SIGINT) == 0


def test_dev_takes_an_hl7_feed_on_its_mllp_port(
    tmp_path: Path, ports: dict[str, int], commands: list[DevCommand]
) -> None:
    from hl7.client import MLLPClient

    from tests.aftercare.hl7v2.samples import sample

    command = DevCommand(tmp_path / ".aftercare", ports, "--no-demo")
    commands.append(command)
    command.wait_for("Aftercare is running")
    assert any(line.strip().startswith(f"HL7 MLLP     127.0.0.1:{ports['mllp']}") for line in command.output)

    wait_until(lambda: not port_is_free("127.0.0.1", ports["mllp"]))
    with MLLPClient("127.0.0.1", ports["mllp"]) as client:
        ack = client.send_message(sample("a01_admit")).decode()

    assert "MSA|AA|MSG0001" in ack
    assert command.stop(signal.SIGTERM) == 0
    assert port_is_free("127.0.0.1", ports["mllp"])


def test_a_taken_port_is_a_clear_error_and_a_failing_exit(
    tmp_path: Path, ports: dict[str, int], commands: list[DevCommand]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["api"]))
        squatter.listen()
        command = DevCommand(tmp_path / "data", ports, "--no-demo")
        commands.append(command)
        code = command.process.wait(timeout=60)
        command._reader.join(timeout=5)

    assert code == 1
    output = "".join(command.output)
    assert f"api port {ports['api']} on 127.0.0.1 is already in use (use --api-port)" in output
    assert not (tmp_path / "data" / "temporal.db").exists()
