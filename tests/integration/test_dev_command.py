"""`aftercare dev`: the whole stack from one command, stopped cleanly, and durable across restarts.

These run the real command in a subprocess with the embedded PostgreSQL (`pgserver`), as on a fresh
machine with nothing installed but the project.
"""

from __future__ import annotations

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

from aftercare.devstack.ports import port_is_free
from tests.conftest import REPO
from tests.prism import free_port


class DevCommand:
    """`python -m aftercare dev ...` with its output collected."""

    def __init__(self, data_dir: Path, ports: dict[str, int], *extra: str) -> None:
        self.ports = ports
        environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
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


@pytest.fixture
def ports() -> dict[str, int]:
    return {"api": free_port(), "temporal": free_port(), "ui": free_port()}


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


def demo_enrollment(api: str) -> dict[str, Any]:
    messages = httpx.get(f"{api}/v1/messages").json()["items"]
    [sms] = messages
    enrollment: dict[str, Any] = httpx.get(f"{api}/v1/enrollments/{sms['enrollment_id']}").json()
    return enrollment


def test_dev_runs_the_stack_stops_cleanly_and_keeps_journeys_across_a_restart(
    tmp_path: Path, ports: dict[str, int], commands: list[DevCommand]
) -> None:
    data_dir = tmp_path / "data"
    first = DevCommand(data_dir, ports, "--demo")
    commands.append(first)
    first.wait_for("Aftercare is running")

    assert httpx.get(f"{first.api}/healthz").json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    assert httpx.get(f"http://127.0.0.1:{ports['ui']}/").status_code == 200
    assert any(f"http://127.0.0.1:{ports['ui']}" in line for line in first.output)
    enrollment = wait_until(lambda: (e := demo_enrollment(first.api))["current_step"] == "await-reply" and e)
    assert enrollment["journey_key"] == "hba1c-followup"
    assert (data_dir / "temporal.db").exists()
    assert (data_dir / "pg").is_dir()

    assert first.stop(signal.SIGTERM) == 0
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())

    second = DevCommand(data_dir, ports, "--no-demo")
    commands.append(second)
    second.wait_for("Aftercare is running")
    resumed = demo_enrollment(second.api)
    assert (resumed["enrollment_id"], resumed["status"]) == (enrollment["enrollment_id"], "running")

    reply = {"type": "sms.reply", "patient_id": resumed["patient_id"], "data": {"body": "YES"}}
    delivered = httpx.post(f"{second.api}/v1/triggers", json=reply).json()
    assert delivered["delivered_to"] == [resumed["enrollment_id"]]
    done = wait_until(
        lambda: (
            (e := httpx.get(f"{second.api}/v1/enrollments/{resumed['enrollment_id']}").json())["status"]
            == "completed"
            and e
        )
    )
    assert [item["step"] for item in done["history"]][-2:] == ["thanks", "done"]
    assert second.stop(signal.SIGINT) == 0


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
