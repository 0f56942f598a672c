"""A throw-away `aftercare dev --no-demo` for a benchmark run, in a temporary data directory."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Stack:
    """The running stack: its supervisor process, API address, all-roles development key, data directory
    and Temporal address."""

    process: subprocess.Popen[bytes]
    api: str
    api_key: str
    data_dir: Path
    temporal_address: str

    def worker_pid(self) -> int:
        """The worker process the supervisor started."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        for pid in children.stdout.split():
            if "worker" in Path(f"/proc/{pid}/cmdline").read_text():
                return int(pid)
        raise SystemExit("no worker under the stack")


# Process roles by a word of their command line, first match wins.
_ROLES = (("mllp", " mllp "), ("worker", " worker"), ("api", " api "), ("temporal", "temporal"))


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the stack: `mllp`, `api`, `worker`,
    `temporal` and `postgres` (its embedded server and backends, found by the stack's data directory)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid], seconds[pid], commands[pid] = (
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / ticks,
            command,
        )
    totals: dict[str, float] = {}
    for pid in seconds:
        role, ancestor = None, pid
        while ancestor > 1 and role is None:
            if (
                stack.data_dir
                and "postgres" in commands.get(ancestor, "")
                and str(stack.data_dir) in commands[ancestor]
            ):
                role = "postgres"
            elif ancestor == stack.process.pid:
                role = next((name for name, word in _ROLES if word in f"{commands[pid]} "), "supervisor")
            ancestor = parents.get(ancestor, 1)
        if role is not None:
            totals[role] = totals.get(role, 0.0) + seconds[pid]
    return totals


def api_headers(api_key: str | None) -> dict[str, str]:
    """The headers that authenticate a benchmark's requests (`--api-key`, else `AFTERCARE_API_KEY`)."""
    key = api_key or os.environ.get("AFTERCARE_API_KEY")
    return {"X-API-Key": key} if key else {}


@contextmanager
def dev_stack(
    api_port: int,
    timeout: float = 180.0,
    *,
    mllp_port: int = 0,
    mllp_processes: int = 1,
    environment: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start the stack on `api_port` (Temporal on +1, UI on +2; MLLP on `mllp_port`, 0: none), with
    `environment` added to this process's, wait until healthy, stop it afterwards."""
    with tempfile.TemporaryDirectory(prefix="aftercare-bench-") as data:
        log = Path(data) / "stack.log"
        api_key = f"ak_dev_{secrets.token_urlsafe(32)}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aftercare",
                "dev",
                "--no-demo",
                "--data-dir",
                data,
                "--api-port",
                str(api_port),
                "--temporal-port",
                str(api_port + 1),
                "--ui-port",
                str(api_port + 2),
                "--mllp-port",
                str(mllp_port),
                "--mllp-processes",
                str(mllp_processes),
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "LOG_LEVEL": "WARNING",
                "AFTERCARE_DEV_API_KEY": api_key,
                **(environment or {}),
            },
        )
        # A benchmark stopped by SIGTERM (`timeout`) stops its stack too, instead of leaving it running.
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            api = f"http://127.0.0.1:{api_port}"
            _wait_until_healthy(process, api, log, timeout)
            yield Stack(process, api, api_key, Path(data), f"127.0.0.1:{api_port + 1}")
        except Exception:
            # The stack's log goes with its directory: show its end with the failure.
            print("the stack's log ends:\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=120)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _wait_until_healthy(process: subprocess.Popen[bytes], api: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("aftercare dev exited while starting:\n" + log.read_text()[-2000:])
        time.sleep(0.5)
    raise SystemExit("the stack did not become healthy")


def quiet_sdk_core() -> None:
    """Only errors from the Temporal SDK core: it warns about every workflow task a saturated machine
    slows down, and the figures say enough."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(quiet))))
