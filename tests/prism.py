"""Prism (@stoplight/prism-cli) serving a provider's own OpenAPI spec: every request our SDK calls make is
validated against the provider's contract, and an invalid one is answered with an error."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO

PRISM = REPO / "tools" / "prism" / "node_modules" / ".bin" / "prism"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def prism_mock(spec: Path, log_file: Path) -> Iterator[str]:
    """Run `prism mock` on the spec; yields its base URL."""
    assert PRISM.exists(), "Prism is missing: `make test` installs it with npm ci --prefix tools/prism"
    port = free_port()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert process.poll() is None, f"Prism exited; see {log_file}"
                try:
                    httpx.get(base, timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.3)
            else:
                raise TimeoutError(f"Prism did not start; see {log_file}")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)
